//! The query languages the sandbox's Jira and Salesforce answer, parsed and evaluated by meaning
//! rather than matched against the strings switchyard sends: the subset of JQL (`field op value`
//! joined by AND/OR, `ORDER BY`) and of SOQL (`SELECT … FROM … WHERE … ORDER BY … LIMIT n`) that
//! switchyard and its canary use. A value that escapes its quotes changes the query's meaning
//! here as it would at the vendor, so a connector's escaping is tested, not assumed.

/// One lexical token.
#[derive(Clone, Debug, PartialEq)]
pub enum Token {
    /// A bare word: a field, a keyword, a number, a relative date (`-30d`).
    Word(String),
    /// A quoted string, its escapes undone.
    Text(String),
    /// `=`, `!=`, `>=`, `<=`, `>`, `<`, `~`.
    Op(String),
    Comma,
    Open,
    Close,
}

/// Split `q` into tokens; `quotes` are the characters that open a string (JQL: both, SOQL: ').
/// A backslash escapes the next character inside a string; an unterminated string is an error.
pub fn tokens(q: &str, quotes: &[char]) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = q.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            ',' => out.push(Token::Comma),
            '(' => out.push(Token::Open),
            ')' => out.push(Token::Close),
            '=' | '~' => out.push(Token::Op(c.to_string())),
            '!' | '>' | '<' => {
                let mut op = c.to_string();
                if chars.peek() == Some(&'=') {
                    op.push('=');
                    chars.next();
                } else if c == '!' {
                    return Err("expecting '=' after '!'".into());
                }
                out.push(Token::Op(op));
            }
            q if quotes.contains(&q) => {
                let mut text = String::new();
                loop {
                    match chars.next() {
                        None => return Err(format!("unterminated string starting {q}{text}")),
                        Some('\\') => match chars.next() {
                            Some('n') => text.push('\n'),
                            Some('t') => text.push('\t'),
                            Some(e) => text.push(e),
                            None => return Err("a backslash ends the query".into()),
                        },
                        Some(e) if e == q => break,
                        Some(e) => text.push(e),
                    }
                }
                out.push(Token::Text(text));
            }
            _ => {
                let mut word = c.to_string();
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "=!<>~,()'\"".contains(n) {
                        break;
                    }
                    word.push(n);
                    chars.next();
                }
                out.push(Token::Word(word));
            }
        }
    }
    Ok(out)
}

/// `field op value`, where the value is a string or a bare word (a number, `-30d`, `null`).
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub field: String,
    pub op: String,
    pub value: Token,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    Is(Condition),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

impl Filter {
    /// Whether a record passes, `test` deciding each condition (AND binds tighter than OR).
    pub fn matches(&self, test: &dyn Fn(&Condition) -> bool) -> bool {
        match self {
            Filter::Is(c) => test(c),
            Filter::And(a, b) => a.matches(test) && b.matches(test),
            Filter::Or(a, b) => a.matches(test) || b.matches(test),
        }
    }

    /// Every condition, for checking the fields they name.
    pub fn conditions(&self) -> Vec<&Condition> {
        match self {
            Filter::Is(c) => vec![c],
            Filter::And(a, b) | Filter::Or(a, b) => {
                let mut all = a.conditions();
                all.extend(b.conditions());
                all
            }
        }
    }
}

fn keyword(t: Option<&Token>, word: &str) -> bool {
    matches!(t, Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
}

/// A cursor over tokens.
struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn word(&mut self, what: &str) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(w)) => Ok(w),
            other => Err(format!("expecting {what} but got {other:?}")),
        }
    }

    fn eat(&mut self, word: &str) -> bool {
        let found = keyword(self.peek(), word);
        if found {
            self.at += 1;
        }
        found
    }

    /// `or := and (OR and)*`, `and := cond (AND cond)*`, `cond := (or) | field op value`.
    fn filter(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.eat("OR") {
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.condition()?;
        while self.eat("AND") {
            left = Filter::And(Box::new(left), Box::new(self.condition()?));
        }
        Ok(left)
    }

    fn condition(&mut self) -> Result<Filter, String> {
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            let inner = self.filter()?;
            return match self.next() {
                Some(Token::Close) => Ok(inner),
                other => Err(format!("expecting ')' but got {other:?}")),
            };
        }
        let field = self.word("a field")?;
        let op = match self.next() {
            Some(Token::Op(op)) => op,
            other => {
                return Err(format!(
                    "expecting an operator after {field} but got {other:?}"
                ))
            }
        };
        let value = match self.next() {
            Some(v @ (Token::Text(_) | Token::Word(_))) => v,
            other => {
                return Err(format!(
                    "expecting a value after {field} {op} but got {other:?}"
                ))
            }
        };
        Ok(Filter::Is(Condition { field, op, value }))
    }

    /// `ORDER BY field [ASC|DESC]`: the field and whether descending.
    fn order_by(&mut self) -> Result<Option<(String, bool)>, String> {
        if !self.eat("ORDER") {
            return Ok(None);
        }
        if !self.eat("BY") {
            return Err("expecting BY after ORDER".into());
        }
        let field = self.word("a field to order by")?;
        let descending = self.eat("DESC");
        if !descending {
            self.eat("ASC");
        }
        Ok(Some((field, descending)))
    }

    fn end(&self) -> Result<(), String> {
        match self.peek() {
            None => Ok(()),
            Some(t) => Err(format!("unexpected {t:?}")),
        }
    }
}

/// A JQL query: its filter (none: every issue) and its order.
#[derive(Debug, PartialEq)]
pub struct Jql {
    pub filter: Option<Filter>,
    pub order_by: Option<(String, bool)>,
}

pub fn jql(q: &str) -> Result<Jql, String> {
    let mut p = Parser {
        tokens: tokens(q, &['"', '\''])?,
        at: 0,
    };
    let filter = if p.peek().is_none() || keyword(p.peek(), "ORDER") {
        None
    } else {
        Some(p.filter()?)
    };
    let order_by = p.order_by()?;
    p.end()?;
    Ok(Jql { filter, order_by })
}

/// A SOQL query.
#[derive(Debug, PartialEq)]
pub struct Soql {
    pub fields: Vec<String>,
    pub object: String,
    pub filter: Option<Filter>,
    pub order_by: Option<(String, bool)>,
    pub limit: Option<usize>,
}

pub fn soql(q: &str) -> Result<Soql, String> {
    let mut p = Parser {
        tokens: tokens(q, &['\''])?,
        at: 0,
    };
    if !p.eat("SELECT") {
        return Err("expecting SELECT".into());
    }
    let mut fields = vec![p.word("a field")?];
    while p.peek() == Some(&Token::Comma) {
        p.at += 1;
        fields.push(p.word("a field")?);
    }
    if !p.eat("FROM") {
        return Err("expecting FROM".into());
    }
    let object = p.word("an object")?;
    let filter = if p.eat("WHERE") {
        Some(p.filter()?)
    } else {
        None
    };
    let order_by = p.order_by()?;
    let limit = if p.eat("LIMIT") {
        let n = p.word("a number")?;
        Some(
            n.parse()
                .map_err(|_| format!("LIMIT {n} is not a number"))?,
        )
    } else {
        None
    };
    p.end()?;
    Ok(Soql {
        fields,
        object,
        filter,
        order_by,
        limit,
    })
}

/// A condition's value as text (a string's content, or the bare word).
pub fn text(v: &Token) -> &str {
    match v {
        Token::Text(t) | Token::Word(t) => t,
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is(field: &str, op: &str, value: Token) -> Filter {
        Filter::Is(Condition {
            field: field.into(),
            op: op.into(),
            value,
        })
    }

    #[test]
    fn the_queries_switchyard_sends_parse_to_what_they_mean() {
        assert_eq!(
            jql(r#"labels = "sy-0123456789abcdef""#).unwrap().filter,
            Some(is("labels", "=", Token::Text("sy-0123456789abcdef".into())))
        );
        let recent = jql("updated >= -30d ORDER BY updated DESC").unwrap();
        assert_eq!(
            recent.filter,
            Some(is("updated", ">=", Token::Word("-30d".into())))
        );
        assert_eq!(recent.order_by, Some(("updated".into(), true)));
        let q =
            soql(r"SELECT Id, Name FROM Account WHERE Website = 'o\'brien\\x.io' LIMIT 1").unwrap();
        assert_eq!(
            (q.fields.len(), q.object.as_str(), q.limit),
            (2, "Account", Some(1))
        );
        assert_eq!(
            q.filter,
            Some(is("Website", "=", Token::Text(r"o'brien\x.io".into())))
        );
    }

    #[test]
    fn a_value_that_escapes_its_quotes_changes_the_meaning_or_breaks_the_query() {
        // What an unescaped `x' OR Name != '` does to SOQL: a second condition, matching all.
        let q = soql("SELECT Id FROM Account WHERE Website = 'x' OR Name != '' LIMIT 1").unwrap();
        assert!(matches!(q.filter, Some(Filter::Or(..))));
        // A stray quote leaves a string open.
        assert!(soql("SELECT Id FROM Account WHERE Website = 'o'brien.io' LIMIT 1").is_err());
        assert!(jql(r#"labels = "a" OR 1 = 1"#).unwrap().filter.is_some());
        assert!(jql(r#"labels = "a"" OR"#).is_err());
        // AND binds tighter than OR.
        let f = jql("a = 1 OR b = 2 AND c = 3").unwrap().filter.unwrap();
        let only_a = |c: &Condition| c.field == "a";
        assert!(f.matches(&only_a));
        assert!(matches!(f, Filter::Or(..)));
    }
}

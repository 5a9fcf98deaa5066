//! PII redaction for what switchyard stores about a message (the decision record's `input`):
//! e-mail addresses, long digit runs (card, phone, account numbers) and URL query strings are
//! replaced, and the text is cut to a bounded length.

/// At most this many characters of a message are kept.
pub(crate) const MAX_CHARS: usize = 500;

pub fn redact(text: &str) -> String {
    let cut: String = text.chars().take(MAX_CHARS).collect();
    let words: Vec<String> = cut
        .split_whitespace()
        .map(|token| {
            if token.contains('@') && token.contains('.') {
                "[email]".to_owned()
            } else if let Some((base, _)) = token.split_once('?').filter(|_| token.contains("://"))
            {
                format!("{base}?[query]")
            } else {
                token.to_owned()
            }
        })
        .collect();
    let mut out = numbers(&words.join(" "));
    if text.chars().count() > MAX_CHARS {
        out.push('…');
    }
    out
}

/// Replace every run of digits and separators (`4111 1111 1111 1111`, `+44 20 7946-0958`) that
/// holds six digits or more; shorter numbers (a year, an error code) carry meaning and stay.
fn numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i].is_ascii_digit()
            || (chars[i] == '+' && chars.get(i + 1).is_some_and(char::is_ascii_digit));
        if !starts {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let mut j = i;
        let mut end = i; // one past the last digit
        let mut digits = 0;
        while j < chars.len() && (chars[j].is_ascii_digit() || " -().+".contains(chars[j])) {
            if chars[j].is_ascii_digit() {
                digits += 1;
                end = j + 1;
            }
            j += 1;
        }
        if digits >= 6 {
            out.push_str("[number]");
        } else {
            out.extend(&chars[i..end]);
        }
        i = end.max(i + 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn emails_numbers_and_queries_go() {
        assert_eq!(
            redact("Mail me at jane.doe@example.com about order 12345678 please"),
            "Mail me at [email] about order [number] please"
        );
        assert_eq!(
            redact("card 4111 1111 1111 1111 was charged"),
            "card [number] was charged"
        );
        assert_eq!(redact("call +44 20 7946 0958 today"), "call [number] today");
        assert_eq!(
            redact("see https://x.example/reset?token=abc123 now"),
            "see https://x.example/reset?[query] now"
        );
        // Short numbers (a year, a count, an error code) stay: they carry meaning.
        assert_eq!(
            redact("since 2024 we get 500 errors"),
            "since 2024 we get 500 errors"
        );
    }

    #[test]
    fn long_text_is_cut() {
        let long = "word ".repeat(300);
        let r = redact(&long);
        assert!(r.chars().count() <= super::MAX_CHARS + 1 && r.ends_with('…'));
    }
}

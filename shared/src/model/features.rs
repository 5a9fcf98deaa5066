//! Text → sparse TF-IDF vector: word unigrams and bigrams plus character 2–5-grams inside word
//! boundaries (robust to typos and inflections in short support messages), sublinear TF, L2 norm.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a: n-grams are short strings, and SipHash's DoS resistance buys nothing for a vocabulary
/// fixed at training time; this is the classifier's hottest loop.
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

pub(crate) type FnvMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// Calls `emit` with every feature string of `text` (reusing one buffer: no allocation per n-gram).
pub(crate) fn for_each_feature(text: &str, mut emit: impl FnMut(&str)) {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .collect();
    let mut buf = String::with_capacity(64);
    for (i, w) in words.iter().enumerate() {
        buf.clear();
        buf.push_str("w:");
        buf.push_str(w);
        emit(&buf);
        if let Some(next) = words.get(i + 1) {
            buf.clear();
            buf.push_str("b:");
            buf.push_str(w);
            buf.push(' ');
            buf.push_str(next);
            emit(&buf);
        }
        // Character n-grams of " word ", so prefixes and suffixes are features of their own.
        let chars: Vec<char> = std::iter::once(' ')
            .chain(w.chars())
            .chain(std::iter::once(' '))
            .collect();
        for n in 2..=5 {
            for window in chars.windows(n) {
                buf.clear();
                buf.push_str("c:");
                buf.extend(window.iter());
                emit(&buf);
            }
        }
    }
}

/// The learned vocabulary and its IDF weights.
#[derive(Clone, Debug, Default)]
pub struct Vocabulary {
    /// Each feature string (a `w:`, `b:` or `c:` n-gram) and its id, which indexes `idf`.
    pub index: FnvMap<String, u32>,
    /// The smoothed IDF weight of each feature, by id.
    pub idf: Vec<f32>,
}

impl Vocabulary {
    /// Features seen in at least `min_df` documents, with smoothed IDF.
    pub fn fit<'a>(texts: impl Iterator<Item = &'a str>, min_df: u32) -> Self {
        let mut df: HashMap<String, u32> = HashMap::new();
        let mut docs = 0u32;
        for text in texts {
            docs += 1;
            let mut seen: Vec<String> = Vec::new();
            for_each_feature(text, |f| seen.push(f.to_owned()));
            seen.sort_unstable();
            seen.dedup();
            for f in seen {
                *df.entry(f).or_default() += 1;
            }
        }
        let mut kept: Vec<(String, u32)> = df.into_iter().filter(|(_, d)| *d >= min_df).collect();
        kept.sort_unstable(); // deterministic ids
        let mut index = FnvMap::with_capacity_and_hasher(kept.len(), Default::default());
        let mut idf = Vec::with_capacity(kept.len());
        for (i, (f, d)) in kept.into_iter().enumerate() {
            index.insert(f, i as u32);
            idf.push(((1.0 + docs as f32) / (1.0 + d as f32)).ln() + 1.0);
        }
        Self { index, idf }
    }

    /// How many features the vocabulary holds.
    pub fn len(&self) -> usize {
        self.idf.len()
    }

    /// `true` when it holds no feature: every text then vectorizes to nothing.
    pub fn is_empty(&self) -> bool {
        self.idf.is_empty()
    }

    /// The sparse, L2-normalized TF-IDF vector of `text`, sorted by feature id.
    pub(crate) fn vectorize(&self, text: &str) -> Vec<(u32, f32)> {
        let mut ids: Vec<u32> = Vec::with_capacity(128);
        for_each_feature(text, |f| {
            if let Some(&id) = self.index.get(f) {
                ids.push(id);
            }
        });
        ids.sort_unstable();
        let mut out: Vec<(u32, f32)> = Vec::with_capacity(ids.len());
        for id in ids {
            match out.last_mut() {
                Some((last, count)) if *last == id => *count += 1.0,
                _ => out.push((id, 1.0)),
            }
        }
        let mut norm = 0.0f32;
        for (id, v) in &mut out {
            *v = (1.0 + v.ln()) * self.idf[*id as usize];
            norm += *v * *v;
        }
        if norm > 0.0 {
            let inv = norm.sqrt().recip();
            for (_, v) in &mut out {
                *v *= inv;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_cover_words_bigrams_and_char_ngrams() {
        let mut all = Vec::new();
        for_each_feature("My card!", |f| all.push(f.to_owned()));
        for want in [
            "w:my",
            "w:card",
            "b:my card",
            "c: c",
            "c:card",
            "c:ard ",
            "c: card",
        ] {
            assert!(
                all.contains(&want.to_owned()),
                "{want} missing from {all:?}"
            );
        }
    }

    #[test]
    fn vectors_are_unit_length_and_ignore_unknown_features() {
        let v = Vocabulary::fit(
            ["card arrived", "card lost", "top up failed"].into_iter(),
            1,
        );
        let x = v.vectorize("Card arrived?");
        let norm: f32 = x.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        assert!(v.vectorize("zzz qqq").is_empty());
    }
}

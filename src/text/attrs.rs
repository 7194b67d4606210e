//! Literals and attribute lists of the textual IR, and their conversion to typed values.
//!
//! The parser reads `{key = value, ...}` into an [`Attrs`] without knowing the op; the op's
//! builder then takes each key it understands with a typed getter. Unknown and duplicate keys
//! are rejected up front, against the op's keys in the op table (`super::ops`), which is also
//! the order the printer writes them in.

use super::lex::{Diag, Pos, Tok, Token};

/// A literal value: one token (`0.5`, `true`, `nan`) or a bracketed list of tokens.
#[derive(Clone, Debug)]
pub(super) enum Lit {
    /// A single token.
    Atom(Token),
    /// `[a, b, ...]`, with the position of the `[`.
    List(Pos, Vec<Token>),
}

impl Lit {
    fn pos(&self) -> Pos {
        match self {
            Lit::Atom(token) => token.pos,
            Lit::List(pos, _) => *pos,
        }
    }

    fn describe(&self) -> String {
        match self {
            Lit::Atom(token) => token.tok.to_string(),
            Lit::List(..) => "a list".to_string(),
        }
    }
}

/// One `key = value` pair.
#[derive(Clone, Debug)]
pub(super) struct Attr {
    pub key: String,
    pub key_pos: Pos,
    pub value: Lit,
}

/// The attributes of one node line, checked against its op's keys, taken one by one.
pub(super) struct Attrs {
    op: &'static str,
    node: String,
    head: Pos,
    items: Vec<Attr>,
}

impl Attrs {
    /// Checks `items` against `keys`, the keys of the op called `op` (unknown and duplicate
    /// keys are errors). `head` is the op name's position, where a missing key is reported.
    pub fn new(
        op: &'static str,
        keys: &[&str],
        node: &str,
        head: Pos,
        items: Vec<Attr>,
    ) -> Result<Attrs, Diag> {
        for (i, attr) in items.iter().enumerate() {
            if !keys.contains(&attr.key.as_str()) {
                let takes = if keys.is_empty() {
                    "it takes none".to_string()
                } else {
                    format!("it takes {}", keys.join(", "))
                };
                let message = format!("{op} has no attribute '{}'; {takes}", attr.key);
                return Err(Diag::new(attr.key_pos, message));
            }
            if items[..i].iter().any(|earlier| earlier.key == attr.key) {
                let message = format!("attribute '{}' is given twice", attr.key);
                return Err(Diag::new(attr.key_pos, message));
            }
        }
        Ok(Attrs {
            op,
            node: node.to_string(),
            head,
            items,
        })
    }

    fn get(&self, key: &str) -> Option<&Lit> {
        self.items.iter().find(|a| a.key == key).map(|a| &a.value)
    }

    pub fn missing(&self, key: &str) -> Diag {
        let message = format!("{} {} needs attribute '{key}'", self.op, self.node);
        Diag::new(self.head, message)
    }

    /// An optional number (`nan` and `inf` included).
    pub fn f64(&self, key: &str) -> Result<Option<f64>, Diag> {
        self.get(key)
            .map(|lit| atom(lit, key, "a number", parse_float::<f64>))
            .transpose()
    }

    /// A required number.
    pub fn required_f64(&self, key: &str) -> Result<f64, Diag> {
        self.f64(key)?.ok_or_else(|| self.missing(key))
    }

    /// An optional `true` or `false`.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, Diag> {
        self.get(key)
            .map(|lit| atom(lit, key, "true or false", parse_bool))
            .transpose()
    }

    /// An optional unsigned 32-bit integer.
    pub fn u32(&self, key: &str) -> Result<Option<u32>, Diag> {
        let what = "an integer from 0 to 4294967295";
        self.get(key)
            .map(|lit| atom(lit, key, what, parse_int::<u32>))
            .transpose()
    }

    /// An optional non-negative integer.
    pub fn usize(&self, key: &str) -> Result<Option<usize>, Diag> {
        let what = "a non-negative integer";
        self.get(key)
            .map(|lit| atom(lit, key, what, parse_int::<usize>))
            .transpose()
    }

    /// A required unsigned 32-bit integer.
    pub fn required_u32(&self, key: &str) -> Result<u32, Diag> {
        self.u32(key)?.ok_or_else(|| self.missing(key))
    }

    /// An optional signed integer.
    pub fn i64(&self, key: &str) -> Result<Option<i64>, Diag> {
        self.get(key)
            .map(|lit| atom(lit, key, "an integer", parse_int::<i64>))
            .transpose()
    }

    /// A required non-negative integer.
    pub fn required_usize(&self, key: &str) -> Result<usize, Diag> {
        self.usize(key)?.ok_or_else(|| self.missing(key))
    }

    /// A required signed integer.
    pub fn required_i64(&self, key: &str) -> Result<i64, Diag> {
        let lit = self.get(key).ok_or_else(|| self.missing(key))?;
        atom(lit, key, "an integer", parse_int::<i64>)
    }

    /// An optional list of signed integers.
    pub fn i64_list(&self, key: &str) -> Result<Option<Vec<i64>>, Diag> {
        self.get(key)
            .map(|lit| list(lit, key, "an integer", parse_int::<i64>))
            .transpose()
    }

    /// A required list of signed integers.
    pub fn required_i64_list(&self, key: &str) -> Result<Vec<i64>, Diag> {
        self.i64_list(key)?.ok_or_else(|| self.missing(key))
    }

    /// An optional list of non-negative integers.
    pub fn usize_list(&self, key: &str) -> Result<Option<Vec<usize>>, Diag> {
        let what = "a non-negative integer";
        self.get(key)
            .map(|lit| list(lit, key, what, parse_int::<usize>))
            .transpose()
    }

    /// An optional list of exactly `len` non-negative integers (one per spatial dimension).
    pub fn usize_list_of(&self, key: &str, len: usize) -> Result<Option<Vec<usize>>, Diag> {
        let Some(values) = self.usize_list(key)? else {
            return Ok(None);
        };
        if values.len() == len {
            return Ok(Some(values));
        }
        let lit = self.get(key).expect("invariant: the list was just read");
        let message = format!(
            "attribute '{key}' has to be a list of {len} non-negative integers (one per spatial \
             dimension), found {} of them",
            values.len()
        );
        Err(Diag::new(lit.pos(), message))
    }

    /// An optional word out of `choices` (`approximate = tanh`): its index.
    pub fn choice(&self, key: &str, choices: &[&str]) -> Result<Option<usize>, Diag> {
        let Some(lit) = self.get(key) else {
            return Ok(None);
        };
        let found = match lit {
            Lit::Atom(Token {
                tok: Tok::Ident(word),
                ..
            }) => choices.iter().position(|c| c == word),
            Lit::Atom(_) | Lit::List(..) => None,
        };
        let what = match choices {
            [one, two] => format!("either {one} or {two}"),
            _ => format!("one of {}", choices.join(", ")),
        };
        found.map(Some).ok_or_else(|| wrong(lit, key, &what))
    }

    /// A required list of non-negative integers.
    pub fn required_usize_list(&self, key: &str) -> Result<Vec<usize>, Diag> {
        self.usize_list(key)?.ok_or_else(|| self.missing(key))
    }
}

fn atom<T>(lit: &Lit, key: &str, what: &str, parse: fn(&Tok) -> Option<T>) -> Result<T, Diag> {
    match lit {
        Lit::Atom(token) => parse(&token.tok).ok_or_else(|| wrong(lit, key, what)),
        Lit::List(..) => Err(wrong(lit, key, what)),
    }
}

fn list<T>(lit: &Lit, key: &str, what: &str, parse: fn(&Tok) -> Option<T>) -> Result<Vec<T>, Diag> {
    match lit {
        Lit::List(_, items) => items
            .iter()
            .map(|token| {
                parse(&token.tok).ok_or_else(|| {
                    let message = format!(
                        "expected {what} in the list of attribute '{key}', found {}",
                        token.tok
                    );
                    Diag::new(token.pos, message)
                })
            })
            .collect(),
        Lit::Atom(_) => Err(wrong(lit, key, "a list [..]")),
    }
}

fn wrong(lit: &Lit, key: &str, what: &str) -> Diag {
    let message = format!(
        "attribute '{key}' has to be {what}, found {}",
        lit.describe()
    );
    Diag::new(lit.pos(), message)
}

/// A float from a number token or from `nan` / `inf` spelled as an identifier.
pub(super) fn parse_float<T: std::str::FromStr>(tok: &Tok) -> Option<T> {
    match tok {
        Tok::Number(text) | Tok::Ident(text) => text.parse().ok(),
        Tok::Value(_) | Tok::Punct(_) | Tok::Other(_) | Tok::Newline | Tok::Eof => None,
    }
}

/// An integer from a number token (no fraction, no exponent).
pub(super) fn parse_int<T: std::str::FromStr>(tok: &Tok) -> Option<T> {
    match tok {
        Tok::Number(text) => text.parse().ok(),
        Tok::Ident(_) | Tok::Value(_) | Tok::Punct(_) | Tok::Other(_) | Tok::Newline | Tok::Eof => {
            None
        }
    }
}

/// `true` or `false`.
pub(super) fn parse_bool(tok: &Tok) -> Option<bool> {
    match tok {
        Tok::Ident(text) if text == "true" => Some(true),
        Tok::Ident(text) if text == "false" => Some(false),
        Tok::Ident(_)
        | Tok::Number(_)
        | Tok::Value(_)
        | Tok::Punct(_)
        | Tok::Other(_)
        | Tok::Newline
        | Tok::Eof => None,
    }
}

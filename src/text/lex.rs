//! The lexer of the textual IR: source text to a flat list of positioned tokens.
//!
//! Lexing never fails: a character that starts no token becomes [`Tok::Other`], and the parser
//! reports it where a token was expected. Comments (`#` to the end of the line), spaces, tabs
//! and carriage returns vanish; line ends are tokens because the grammar is line-based.

use std::fmt;

/// A 1-based line and column (in characters) in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Pos {
    pub line: usize,
    pub col: usize,
}

/// A message for the user at a position; the parser turns it into [`crate::Error::Parse`].
#[derive(Clone, Debug)]
pub(super) struct Diag {
    pub pos: Pos,
    pub message: String,
}

impl Diag {
    /// A message at `pos`.
    pub fn new(pos: Pos, message: impl Into<String>) -> Diag {
        Diag {
            pos,
            message: message.into(),
        }
    }
}

/// What a token is.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    /// `[A-Za-z_][A-Za-z0-9_.]*`: keywords, op names, dtypes, attribute keys, `nan`, `true`.
    Ident(String),
    /// `%` then `[A-Za-z0-9_.]+`, stored without the `%`.
    Value(String),
    /// A numeric literal as written (`-1`, `0.5`, `1e-3`, `-inf`); checked when it is used.
    Number(String),
    /// One of `: = , [ ] { }`.
    Punct(char),
    /// A character that starts no token.
    Other(char),
    /// The end of a line.
    Newline,
    /// The end of the source; the last token, repeated by the parser if asked for more.
    Eof,
}

/// A token and where it starts.
#[derive(Clone, Debug)]
pub(super) struct Token {
    pub tok: Tok,
    pub pos: Pos,
}

/// The longest token text quoted in a message; longer texts are cut.
const MAX_QUOTED: usize = 40;

impl fmt::Display for Tok {
    /// How a message names the token: `'relu'`, `'%x'`, `','`, `end of line`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(text) | Tok::Number(text) => write!(f, "'{}'", shorten(text)),
            Tok::Value(name) => write!(f, "'%{}'", shorten(name)),
            Tok::Punct(c) => write!(f, "'{c}'"),
            Tok::Other(c) => write!(f, "'{}'", c.escape_debug()),
            Tok::Newline => f.write_str("end of line"),
            Tok::Eof => f.write_str("end of file"),
        }
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_QUOTED {
        text.to_string()
    } else {
        let head: String = text.chars().take(MAX_QUOTED).collect();
        format!("{head}...")
    }
}

/// True for the characters an identifier may start with.
pub(super) fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

/// True for the characters of identifiers and value names after the first.
pub(super) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// Splits `source` into tokens, ending with [`Tok::Eof`].
pub(super) fn lex(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let (mut i, mut line, mut col) = (0, 1, 1);
    while i < chars.len() {
        let c = chars[i];
        let pos = Pos { line, col };
        let next = chars.get(i + 1).copied();
        let start = i;
        let tok = match c {
            '\n' => {
                i += 1;
                tokens.push(Token {
                    tok: Tok::Newline,
                    pos,
                });
                line += 1;
                col = 1;
                continue;
            }
            ' ' | '\t' | '\r' => {
                i += 1;
                col += 1;
                continue;
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                    col += 1;
                }
                continue;
            }
            ':' | '=' | ',' | '[' | ']' | '{' | '}' => {
                i += 1;
                Tok::Punct(c)
            }
            '%' if next.is_some_and(is_name_char) => {
                i += 1;
                i = scan_name(&chars, i);
                Tok::Value(chars[start + 1..i].iter().collect())
            }
            c if is_ident_start(c) => {
                i = scan_name(&chars, i + 1);
                Tok::Ident(chars[start..i].iter().collect())
            }
            c if starts_number(c, next) => {
                i = scan_number(&chars, i + 1);
                Tok::Number(chars[start..i].iter().collect())
            }
            c => {
                i += 1;
                Tok::Other(c)
            }
        };
        col += i - start;
        tokens.push(Token { tok, pos });
    }
    tokens.push(Token {
        tok: Tok::Eof,
        pos: Pos { line, col },
    });
    tokens
}

fn scan_name(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && is_name_char(chars[i]) {
        i += 1;
    }
    i
}

/// A number starts with a digit, a `.` before a digit, or a sign before a digit, a `.` or a
/// letter (so `-inf` and `-nan` are numbers).
fn starts_number(c: char, next: Option<char>) -> bool {
    match c {
        '0'..='9' => true,
        '.' => next.is_some_and(|n| n.is_ascii_digit()),
        '-' | '+' => next.is_some_and(|n| n.is_ascii_alphanumeric() || n == '.'),
        _ => false,
    }
}

/// Scans the rest of a number: name characters, and a sign right after an exponent's `e`.
fn scan_number(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() {
        let c = chars[i];
        let after_exponent = matches!(chars[i - 1], 'e' | 'E');
        if is_name_char(c) || (after_exponent && (c == '+' || c == '-')) {
            i += 1;
        } else {
            break;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<Tok> {
        lex(source).into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn splits_a_node_line() {
        let ident = |s: &str| Tok::Ident(s.to_string());
        let number = |s: &str| Tok::Number(s.to_string());
        assert_eq!(
            kinds("%d1: f32[] = dropout %h.1 {p = 1e-3, x = -inf} # note\n"),
            [
                Tok::Value("d1".into()),
                Tok::Punct(':'),
                ident("f32"),
                Tok::Punct('['),
                Tok::Punct(']'),
                Tok::Punct('='),
                ident("dropout"),
                Tok::Value("h.1".into()),
                Tok::Punct('{'),
                ident("p"),
                Tok::Punct('='),
                number("1e-3"),
                Tok::Punct(','),
                ident("x"),
                Tok::Punct('='),
                number("-inf"),
                Tok::Punct('}'),
                Tok::Newline,
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn columns_count_characters() {
        let tokens = lex("é %x\n  ?");
        let at: Vec<(Tok, usize, usize)> = tokens
            .into_iter()
            .map(|t| (t.tok, t.pos.line, t.pos.col))
            .collect();
        assert_eq!(
            at,
            [
                (Tok::Other('é'), 1, 1),
                (Tok::Value("x".into()), 1, 3),
                (Tok::Newline, 1, 5),
                (Tok::Other('?'), 2, 3),
                (Tok::Eof, 2, 4),
            ]
        );
    }
}

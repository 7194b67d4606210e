//! A cursor over the token list, and the readers of the small syntactic pieces of a line:
//! types, literals and attribute lists. Every reader returns what it read or a [`Diag`] saying
//! what was expected and what was found; none of them reads past the end of its line.

use super::attrs::{Attr, Lit, parse_int};
use super::lex::{Diag, Pos, Tok, Token, lex};
use crate::error::TypeError;
use crate::graph::{DType, Shape, TensorType};

/// The tokens of a source and the position of the next one.
pub(super) struct Cursor {
    tokens: Vec<Token>,
    at: usize,
}

impl Cursor {
    /// A cursor at the first token of `source`.
    pub fn new(source: &str) -> Cursor {
        Cursor {
            tokens: lex(source),
            at: 0,
        }
    }

    /// `f32[d0, d1, ...]` or `i32[...]`.
    pub fn ty(&mut self) -> Result<TensorType, Diag> {
        let token = self.bump();
        let dtype = match &token.tok {
            Tok::Ident(name) => DType::from_name(name),
            Tok::Value(_)
            | Tok::Number(_)
            | Tok::Punct(_)
            | Tok::Other(_)
            | Tok::Newline
            | Tok::Eof => None,
        };
        let Some(dtype) = dtype else {
            let message = format!("expected a type such as f32[2, 3], found {}", token.tok);
            return Err(Diag::new(token.pos, message));
        };
        self.expect('[', "after the element type")?;
        let mut dims = Vec::new();
        if self.peek().tok == Tok::Punct(']') {
            self.bump();
        } else {
            loop {
                let token = self.bump();
                let Some(dim) = parse_int::<usize>(&token.tok) else {
                    let message = format!(
                        "expected a dimension (an integer >= 0), found {}",
                        token.tok
                    );
                    return Err(Diag::new(token.pos, message));
                };
                dims.push(dim);
                if !self.list_continues("in the shape")? {
                    break;
                }
            }
        }
        let ty = TensorType::new(dtype, Shape(dims));
        // Checked here, at the annotation, before a constant's literal is counted against it.
        if !ty.fits_in_memory() {
            let message = TypeError::TooLarge { ty }.to_string();
            return Err(Diag::new(token.pos, message));
        }
        Ok(ty)
    }

    /// A constant's value: one number or a list of them.
    pub fn literal(&mut self) -> Result<Lit, Diag> {
        self.lit("a literal (a number or a list [..]) after constant")
    }

    /// `{key = value, ...}`.
    pub fn attrs(&mut self) -> Result<Vec<Attr>, Diag> {
        self.bump();
        let mut attrs = Vec::new();
        if self.peek().tok == Tok::Punct('}') {
            self.bump();
            return Ok(attrs);
        }
        loop {
            let key_pos = self.peek().pos;
            let key = self.ident("an attribute name")?;
            self.expect('=', &format!("after attribute '{key}'"))?;
            let value = self.lit(&format!("a value for attribute '{key}'"))?;
            attrs.push(Attr {
                key,
                key_pos,
                value,
            });
            let token = self.bump();
            match token.tok {
                Tok::Punct(',') => {}
                Tok::Punct('}') => return Ok(attrs),
                other => {
                    let message = format!("expected ',' or '}}' in the attributes, found {other}");
                    return Err(Diag::new(token.pos, message));
                }
            }
        }
    }

    /// One number-like token, or `[` tokens separated by `,` `]`. Lists do not nest.
    pub fn lit(&mut self, expected: &str) -> Result<Lit, Diag> {
        let token = self.bump();
        if is_atom(&token.tok) {
            return Ok(Lit::Atom(token));
        }
        if token.tok != Tok::Punct('[') {
            let message = format!("expected {expected}, found {}", token.tok);
            return Err(Diag::new(token.pos, message));
        }
        let mut items = Vec::new();
        if self.peek().tok == Tok::Punct(']') {
            self.bump();
            return Ok(Lit::List(token.pos, items));
        }
        loop {
            let item = self.bump();
            if !is_atom(&item.tok) {
                let message = format!("expected a number in the list, found {}", item.tok);
                return Err(Diag::new(item.pos, message));
            }
            items.push(item);
            if !self.list_continues("in the list")? {
                return Ok(Lit::List(token.pos, items));
            }
        }
    }

    /// After a list item: true on `,`, false on `]`, an error otherwise.
    pub fn list_continues(&mut self, context: &str) -> Result<bool, Diag> {
        let token = self.bump();
        match token.tok {
            Tok::Punct(',') => Ok(true),
            Tok::Punct(']') => Ok(false),
            other => {
                let message = format!("expected ',' or ']' {context}, found {other}");
                Err(Diag::new(token.pos, message))
            }
        }
    }

    /// An identifier; `what` names it in the error.
    pub fn ident(&mut self, what: &str) -> Result<String, Diag> {
        let token = self.bump();
        match token.tok {
            Tok::Ident(name) => Ok(name),
            other => Err(Diag::new(
                token.pos,
                format!("expected {what}, found {other}"),
            )),
        }
    }

    /// An output's name: any node name (see [`crate::graph::is_node_name`]), so an identifier
    /// or a word of digits such as `2`; `what` names it in the error.
    pub fn output_name(&mut self, what: &str) -> Result<String, Diag> {
        let token = self.bump();
        match token.tok {
            Tok::Ident(name) => Ok(name),
            Tok::Number(name) if crate::graph::is_node_name(&name) => Ok(name),
            other => Err(Diag::new(
                token.pos,
                format!("expected {what}, found {other}"),
            )),
        }
    }

    /// A value name `%name` and its position.
    pub fn value(&mut self, context: &str) -> Result<(String, Pos), Diag> {
        let token = self.bump();
        match token.tok {
            Tok::Value(name) => Ok((name, token.pos)),
            other => {
                let message = format!("expected a value '%name' {context}, found {other}");
                Err(Diag::new(token.pos, message))
            }
        }
    }

    /// The punctuation `punct`.
    pub fn expect(&mut self, punct: char, context: &str) -> Result<(), Diag> {
        let token = self.bump();
        if token.tok == Tok::Punct(punct) {
            Ok(())
        } else {
            let message = format!("expected '{punct}' {context}, found {}", token.tok);
            Err(Diag::new(token.pos, message))
        }
    }

    /// Checks that the line ends here, without consuming the line end.
    pub fn end_of_line(&mut self, context: &str) -> Result<(), Diag> {
        let token = self.peek().clone();
        if is_line_end(&token.tok) {
            Ok(())
        } else {
            let message = format!("expected end of line {context}, found {}", token.tok);
            Err(Diag::new(token.pos, message))
        }
    }

    /// The current token, not consumed.
    pub fn peek(&self) -> &Token {
        &self.tokens[self.at]
    }

    /// The current token; the position stays on the final end-of-file token.
    pub fn bump(&mut self) -> Token {
        let token = self.tokens[self.at].clone();
        if self.at + 1 < self.tokens.len() {
            self.at += 1;
        }
        token
    }

    /// Skips the rest of line `line` (which the current token may already have left).
    pub fn skip_past(&mut self, line: usize) {
        while self.peek().pos.line <= line && self.peek().tok != Tok::Eof {
            self.bump();
        }
    }

    /// Skips blank lines (comments are already gone).
    pub fn skip_newlines(&mut self) {
        while self.peek().tok == Tok::Newline {
            self.bump();
        }
    }
}

/// True for the tokens that end a line.
pub(super) fn is_line_end(tok: &Tok) -> bool {
    matches!(tok, Tok::Newline | Tok::Eof)
}

/// True for the tokens a literal may consist of (numbers, `nan`, `true`, ...).
fn is_atom(tok: &Tok) -> bool {
    matches!(tok, Tok::Number(_) | Tok::Ident(_))
}

//! The parser: textual IR to a verified [`Graph`], reporting every error it can find.
//!
//! The grammar is line-based, so recovery is simple: a line with an error is reported and
//! skipped, and parsing goes on with the next line. A value whose line failed is *poisoned*:
//! lines that use it are skipped without a message of their own, since the user can fix only
//! the first cause. Nodes are built with [`Graph::add`] (so types are inferred and checked as
//! they are read) and the finished graph is run through [`verify`], whose errors are placed on
//! the line of the node they name. No input makes the parser panic.

use std::collections::{HashMap, HashSet};

use super::cursor::{Cursor, is_line_end};
use super::lex::{Diag, Pos, Tok};
use super::ops::{NodeLine, build_op, op_templates};
use crate::error::{Error, Result};
use crate::graph::verify::verify;
use crate::graph::{Graph, Op};

/// Parses one `graph NAME { ... }` and verifies it. Errors are [`Error::Parse`] with the line
/// and column, all of them together in an [`Error::Many`] when there are several.
pub fn parse(source: &str) -> Result<Graph> {
    Parser::new(source).file()
}

/// Why a line was not added: an error to report, or a poisoned operand (nothing to report).
enum LineFail {
    Report(Diag),
    Quiet,
}

impl From<Diag> for LineFail {
    fn from(diag: Diag) -> LineFail {
        LineFail::Report(diag)
    }
}

/// The parse state: the cursor, the graph built so far and what went wrong.
struct Parser {
    cursor: Cursor,
    graph: Graph,
    errors: Vec<Diag>,
    /// Names whose line failed; their users are skipped quietly.
    poisoned: HashSet<String>,
    /// Where each node was defined, for placing verifier errors.
    defined_at: HashMap<String, Pos>,
    /// Dropout-family lines so far: the default stream of the next one.
    dropouts: u32,
    /// True if some output line was not added, so graph-level checks would only add noise.
    outputs_incomplete: bool,
    /// False if the `graph NAME {` line failed: then a missing `}` is no news either.
    has_header: bool,
    templates: Vec<Op>,
}

impl Parser {
    fn new(source: &str) -> Parser {
        Parser {
            cursor: Cursor::new(source),
            graph: Graph::new(""),
            errors: Vec::new(),
            poisoned: HashSet::new(),
            defined_at: HashMap::new(),
            dropouts: 0,
            outputs_incomplete: false,
            has_header: false,
            templates: op_templates(),
        }
    }

    fn file(mut self) -> Result<Graph> {
        self.cursor.skip_newlines();
        let first = self.cursor.peek().pos.line;
        match self.header() {
            Ok(name) => {
                self.graph = Graph::new(name);
                self.has_header = true;
            }
            Err(diag) => {
                self.errors.push(diag);
                self.outputs_incomplete = true;
            }
        }
        self.cursor.skip_past(first);
        let closing = self.body();
        if let Err(error) = verify(&self.graph) {
            self.place_verifier_errors(&error, closing);
        }
        let mut errors = self.errors;
        errors.sort_by_key(|diag| diag.pos);
        let errors = errors
            .into_iter()
            .map(|diag| Error::Parse {
                line: diag.pos.line,
                col: diag.pos.col,
                message: diag.message,
            })
            .collect();
        match Error::from_list(errors) {
            None => Ok(self.graph),
            Some(error) => Err(error),
        }
    }

    /// `graph NAME {` and the end of its line.
    fn header(&mut self) -> Result<String, Diag> {
        let token = self.cursor.bump();
        if token.tok != Tok::Ident("graph".to_string()) {
            let message = format!(
                "expected 'graph NAME {{' to start the file, found {}",
                token.tok
            );
            return Err(Diag::new(token.pos, message));
        }
        let name = self.cursor.ident("the graph's name")?;
        self.cursor.expect('{', "after the graph's name")?;
        self.cursor.end_of_line("after 'graph NAME {'")?;
        Ok(name)
    }

    /// Node and output lines up to the closing `}`; returns where the graph ends.
    fn body(&mut self) -> Pos {
        loop {
            self.cursor.skip_newlines();
            let token = self.cursor.peek().clone();
            let line = match &token.tok {
                Tok::Eof if !self.has_header => return token.pos,
                Tok::Eof => {
                    let message = format!(
                        "expected '}}' to close graph {}, found end of file",
                        self.graph.name()
                    );
                    self.errors.push(Diag::new(token.pos, message));
                    return token.pos;
                }
                Tok::Punct('}') => {
                    self.cursor.bump();
                    self.trailer();
                    return token.pos;
                }
                Tok::Value(name) => self.node_line(name.clone(), token.pos),
                Tok::Ident(word) if word == "output" => self.output_line(),
                Tok::Ident(_) | Tok::Number(_) | Tok::Punct(_) | Tok::Other(_) | Tok::Newline => {
                    let message = format!(
                        "expected a node '%name = op ...', an 'output name = %value' or '}}', found {}",
                        token.tok
                    );
                    Err(Diag::new(token.pos, message))
                }
            };
            if let Err(diag) = line {
                self.errors.push(diag);
            }
            self.cursor.skip_past(token.pos.line);
        }
    }

    /// Nothing but blank lines and comments may follow the closing `}`.
    fn trailer(&mut self) {
        self.cursor.skip_newlines();
        let token = self.cursor.peek().clone();
        if token.tok != Tok::Eof {
            let message = format!(
                "expected end of file after the graph's closing '}}', found {}",
                token.tok
            );
            self.errors.push(Diag::new(token.pos, message));
        }
    }

    /// `output NAME = %value`.
    fn output_line(&mut self) -> Result<(), Diag> {
        self.cursor.bump();
        let name_pos = self.cursor.peek().pos;
        let name = self.cursor.output_name("the output's name")?;
        self.cursor.expect('=', "after the output's name")?;
        let (value, value_pos) = self.cursor.value("after 'output NAME ='")?;
        self.cursor.end_of_line("after the output's value")?;
        let Some(node) = self.graph.find(&value) else {
            self.outputs_incomplete = true;
            if self.poisoned.contains(&value) {
                return Ok(());
            }
            return Err(Diag::new(value_pos, format!("unknown value %{value}")));
        };
        self.graph.add_output(name, node).map_err(|error| {
            self.outputs_incomplete = true;
            Diag::new(name_pos, error.to_string())
        })
    }

    /// A node line starting with `%name` at `pos`; a failed line poisons its name unless an
    /// earlier line defined it.
    fn node_line(&mut self, name: String, pos: Pos) -> Result<(), Diag> {
        self.cursor.bump();
        let result = self
            .node_syntax(name.clone(), pos)
            .and_then(|line| self.add_node(line));
        let fail = match result {
            Ok(()) => return Ok(()),
            Err(fail) => fail,
        };
        if self.graph.find(&name).is_none() {
            self.poisoned.insert(name);
        }
        match fail {
            LineFail::Report(diag) => Err(diag),
            LineFail::Quiet => Ok(()),
        }
    }

    /// Reads the rest of a node line after `%name`, up to (not including) its end.
    fn node_syntax(&mut self, name: String, name_pos: Pos) -> Result<NodeLine, LineFail> {
        let mut annotation = None;
        if self.cursor.peek().tok == Tok::Punct(':') {
            self.cursor.bump();
            let pos = self.cursor.peek().pos;
            annotation = Some((self.cursor.ty()?, pos));
            self.cursor.expect('=', "after the type")?;
        } else {
            self.cursor.expect('=', &format!("or ':' after %{name}"))?;
        }
        let op_token = self.cursor.bump();
        let Tok::Ident(op_name) = &op_token.tok else {
            let message = format!("expected an op name, found {}", op_token.tok);
            return Err(Diag::new(op_token.pos, message).into());
        };
        let Some(template) = self.templates.iter().find(|t| t.name() == op_name) else {
            let message = format!("unknown op '{op_name}'");
            return Err(Diag::new(op_token.pos, message).into());
        };
        let template = template.clone();
        let default_stream = self.dropouts;
        if template.is_dropout() {
            self.dropouts = self.dropouts.saturating_add(1);
        }
        let mut operands = Vec::new();
        let mut literal = None;
        let context = if let Op::Constant(_) = template {
            literal = Some(self.cursor.literal()?);
            "after the literal"
        } else if self.cursor.peek().tok == Tok::Punct('{') || template.is_leaf() {
            "after the op"
        } else {
            operands.push(self.cursor.value("or '{' or end of line after the op")?);
            while self.cursor.peek().tok == Tok::Punct(',') {
                self.cursor.bump();
                operands.push(self.cursor.value("after ','")?);
            }
            "after operand"
        };
        let mut attrs = Vec::new();
        if self.cursor.peek().tok == Tok::Punct('{') {
            attrs = self.cursor.attrs()?;
            self.cursor.end_of_line("after the attributes")?;
        } else if !is_line_end(&self.cursor.peek().tok) {
            let found = &self.cursor.peek().tok;
            let expected = if operands.is_empty() {
                "'{' or end of line"
            } else {
                "',' or '{' or end of line"
            };
            let message = format!("expected {expected} {context}, found {found}");
            return Err(Diag::new(self.cursor.peek().pos, message).into());
        }
        Ok(NodeLine {
            name,
            name_pos,
            annotation,
            template,
            op_pos: op_token.pos,
            operands,
            literal,
            attrs,
            default_stream,
        })
    }

    /// Builds the op of a syntactically valid line and adds it to the graph.
    fn add_node(&mut self, mut line: NodeLine) -> Result<(), LineFail> {
        if self.graph.find(&line.name).is_some() || self.poisoned.contains(&line.name) {
            let what = "node";
            let message = Error::DuplicateName {
                name: line.name.clone(),
                what,
            }
            .to_string();
            return Err(Diag::new(line.name_pos, message).into());
        }
        let items = std::mem::take(&mut line.attrs);
        let op = build_op(&line, items)?;
        let mut ids = Vec::new();
        let mut quiet = false;
        for (operand, pos) in &line.operands {
            match self.graph.find(operand) {
                Some(id) => ids.push(id),
                None if self.poisoned.contains(operand) => quiet = true,
                None => return Err(Diag::new(*pos, format!("unknown value %{operand}")).into()),
            }
        }
        if quiet {
            return Err(LineFail::Quiet);
        }
        let id = self
            .graph
            .add(line.name.clone(), op, &ids)
            .map_err(|error| Diag::new(line.op_pos, error.to_string()))?;
        let node = &self.graph[id];
        let computed = node.ty.clone();
        let op_name = node.op.name();
        if let Some((annotated, pos)) = &line.annotation
            && *annotated != computed
        {
            self.graph.remove(id);
            let message = format!("annotation says {annotated} but {op_name} computes {computed}");
            return Err(Diag::new(*pos, message).into());
        }
        self.defined_at.insert(line.name, line.name_pos);
        Ok(())
    }

    /// Maps the verifier's errors to the line of the node they name, or to the closing `}`.
    fn place_verifier_errors(&mut self, error: &Error, closing: Pos) {
        for error in error.flatten() {
            let pos = match error {
                Error::Type { node, .. }
                | Error::DuplicateStream { node, .. }
                | Error::OrphanMask { node, .. }
                | Error::MaskMismatch { node, .. }
                | Error::GradMismatch { node, .. }
                | Error::InplaceConflict { node, .. } => {
                    self.defined_at.get(node).copied().unwrap_or(closing)
                }
                // A graph-level complaint about a graph that lost lines to errors is noise.
                Error::Invalid { .. } if self.outputs_incomplete => continue,
                // Graph-level errors (no outputs) belong to the whole graph: its closing brace.
                _graph_level => closing,
            };
            self.errors.push(Diag::new(pos, error.to_string()));
        }
    }
}

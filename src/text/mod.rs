//! The textual IR: the one form in which graphs are shown, written, snapshot and reported.
//!
//! ```text
//! # comments run from '#' to the end of the line
//! graph simple_net {
//!   %x: f32[32, 784] = input
//!   %fc1.weight: f32[256, 784] = parameter
//!   %fc1: f32[32, 256] = linear %x, %fc1.weight
//!   %half: f32[] = constant 0.5
//!   %d1: f32[32, 256] = dropout %fc1 {p = 0.5, stream = 0}
//!   output logits = %d1
//! }
//! ```
//!
//! The grammar, one item per line:
//! ```text
//! file    := 'graph' IDENT '{' NL line* '}' NL*
//! line    := VALUE [':' TYPE] '=' OP [operands | literal] [attrs] NL
//!          | 'output' IDENT '=' VALUE NL
//! TYPE    := ('f32' | 'i32' | 'bool') '[' [INT (',' INT)*] ']'  f32[] is a scalar
//! operands:= VALUE (',' VALUE)*
//! literal := ATOM | '[' [ATOM (',' ATOM)*] ']'                  row-major, numel values
//! ATOM    := NUMBER | 'true' | 'false'                          bool constants take true/false
//! attrs   := '{' [IDENT '=' (NUMBER | BOOL | '[' NUMBER,* ']') (',' ...)*] '}'
//! IDENT   := [A-Za-z_][A-Za-z0-9_.]*      VALUE := '%' [A-Za-z0-9_.]+
//! ```
//! Op names are [`crate::Op::name`]'s. The type annotation is required on `input`,
//! `parameter` and `constant` (it is their type) and checked against the inferred type
//! elsewhere. Numbers include `nan`, `inf`, `-inf` and `-0`. Attributes per op, in printing
//! order, defaults omitted when printed:
//! - dropout family: `p` (required), `inplace` (false), `broadcast_dims` (`[]`),
//!   `sample_steps` (false), `stream` (the number of dropout-family nodes before it in the
//!   file; always printed);
//! - dropout masks (`dropout_mask`, `dropout2d_mask`, ... one per kind): `p` (required),
//!   `broadcast_dims` (`[]`), `sample_steps` (false), `stream` (required: the stream of the
//!   dropout it describes; masks do not count as dropout-family nodes for the default
//!   stream);
//! - `conv1d`, `conv2d`, `conv3d` (operands input, weight[, bias]): one value per spatial
//!   dimension in `stride` (all 1), `padding` (all 0), `padding_end` (`padding`), `dilation`
//!   (all 1); `groups` (1);
//! - `max_pool1d/2d/3d`: `kernel` (required), `stride` (the kernel), `padding` (all 0),
//!   `dilation` (all 1), `ceil_mode` (false); `avg_pool1d/2d/3d`: `kernel`, `stride`,
//!   `padding`, `ceil_mode`, `count_include_pad` (true); `adaptive_avg_pool1d/2d/3d`:
//!   `output` (required), one value per spatial dimension each;
//! - `sum`, `mean`, `amax`: `axes` (`[]`, every axis), `keepdim` (false);
//! - `softmax`, `log_softmax`: `axis` (required); `reshape`: `shape` (required, one `-1`
//!   allowed); `transpose`: `perm` (required).
//!
//! [`parse()`] reads a program into a verified graph, `Display` on [`crate::Graph`] prints one
//! ([`mod@print`]), and [`Graph::dot`](crate::Graph::dot) renders Graphviz DOT ([`dot`]).
//! Printing then parsing is the identity; names are printed as they are, so a graph built
//! through the API prints as valid text only if its names follow the grammar.

mod attrs;
mod cursor;
pub mod dot;
mod lex;
mod ops;
pub mod parse;
pub mod print;

pub use dot::Dot;
pub use parse::parse;

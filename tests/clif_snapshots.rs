//! CLIF snapshots of a few small programs: the Cranelift IR lowering emits, reviewed like code.
//! Kept apart from the IR snapshots so a Cranelift upgrade or a lowering change touches only
//! these. Bless with `INSTA_UPDATE=always cargo test --release --test clif_snapshots`.

use dropjit::{Compiler, Isa, Mode, text};

/// The CLIF of `source` compiled for `mode`. The mask kernel is fixed (the portable one, which
/// every host runs), since generated code passes its number to the keep-bit generator.
fn clif(source: &str, mode: Mode) -> String {
    let graph = text::parse(source).unwrap_or_else(|e| panic!("{e}\n{source}"));
    let compiler = Compiler::new().mode(mode).verify(true);
    let compiled = (compiler.isa(Isa::Portable)).compile(&graph);
    compiled
        .unwrap_or_else(|e| panic!("{e}\n{source}"))
        .clif()
        .to_string()
}

/// A fused element-wise kernel with a broadcast parameter: one loop, no branches inside.
#[test]
fn fused_bias_relu() {
    let source = "graph bias_relu {
  %x: f32[2, 3] = input
  %b: f32[3] = parameter
  %y: f32[2, 3] = add %x, %b
  %r: f32[2, 3] = relu %y
  output r = %r
}";
    insta::assert_snapshot!(clif(source, Mode::Eval));
}

/// A channel-wise dropout, compiled in both modes below.
const CHANNEL_DROPOUT: &str = "graph channel_dropout {
  %x: f32[2, 3, 2, 2] = input
  %y: f32[2, 3, 2, 2] = dropout2d %x {p = 0.25, stream = 0}
  output y = %y
}";

/// A channel-wise dropout in train mode: the keep-byte draw phase (one call of the keep-bit
/// generator per run of mask groups, each bit becoming a byte) and the loop that applies it.
#[test]
fn dropout2d_train() {
    insta::assert_snapshot!(clif(CHANNEL_DROPOUT, Mode::Train));
}

/// The same graph in eval mode: the dropout is gone and nothing is left to compute (the run
/// copies the input to the output), so there is no function at all.
#[test]
fn dropout2d_eval() {
    insta::assert_snapshot!(clif(CHANNEL_DROPOUT, Mode::Eval));
}

/// cross_entropy: the target check that returns an error code through the ABI, then the
/// fixed-order mean.
#[test]
fn cross_entropy() {
    let source = "graph loss {
  %logits: f32[4, 3] = input
  %targets: i32[4] = input
  %loss: f32[] = cross_entropy %logits, %targets
  output loss = %loss
}";
    insta::assert_snapshot!(clif(source, Mode::Eval));
}

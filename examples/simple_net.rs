//! The seed's SimpleNet built with the graph API and run by the reference interpreter:
//! Linear 784-256, relu, Dropout(0.5), Linear 256-128, relu, Dropout(0.5), Linear 128-10.
//! Train mode draws a new mask on every call; eval mode is the identity for every dropout.
//!
//! Run with `cargo run --release --example simple_net`.

use std::collections::BTreeMap;

use dropjit::graph::{Dropout, DropoutKind, Op, TensorType, UnaryOp};
use dropjit::{Generator, Graph, Mode, NodeId, Tensor, interp};

/// A graph under construction with the values of its parameters.
struct Net {
    graph: Graph,
    values: BTreeMap<String, Tensor>,
    generator: Generator,
}

impl Net {
    /// Adds `linear(in -> out)`, its parameters drawn like PyTorch's default (uniform in
    /// ±1/sqrt(in)), and returns the linear node.
    fn linear(
        &mut self,
        x: NodeId,
        name: &str,
        inputs: usize,
        outputs: usize,
    ) -> dropjit::Result<NodeId> {
        let bound = 1.0 / (inputs as f32).sqrt();
        let weight_ty = TensorType::f32([outputs, inputs]);
        let bias_ty = TensorType::f32([outputs]);
        for (suffix, ty) in [("weight", &weight_ty), ("bias", &bias_ty)] {
            let value = self
                .generator
                .uniform(ty.shape.clone(), -bound, bound)
                .unwrap();
            self.values.insert(format!("{name}.{suffix}"), value);
        }
        let weight = self
            .graph
            .add(format!("{name}.weight"), Op::Parameter(weight_ty), &[])?;
        let bias = self
            .graph
            .add(format!("{name}.bias"), Op::Parameter(bias_ty), &[])?;
        self.graph
            .add(name, Op::Linear { bias: true }, &[x, weight, bias])
    }

    /// Adds `dropout(relu(x))` with probability `p` on its own stream.
    fn relu_dropout(
        &mut self,
        x: NodeId,
        name: &str,
        p: f64,
        stream: u32,
    ) -> dropjit::Result<NodeId> {
        let relu = self
            .graph
            .add(format!("{name}.relu"), Op::Unary(UnaryOp::Relu), &[x])?;
        let dropout = Op::Dropout(Dropout::new(DropoutKind::Dropout, p, stream));
        self.graph.add(name, dropout, &[relu])
    }
}

fn main() -> anyhow::Result<()> {
    let mut net = Net {
        graph: Graph::new("simple_net"),
        values: BTreeMap::new(),
        generator: Generator::new(42),
    };
    let x = net
        .graph
        .add("x", Op::Input(TensorType::f32([32, 784])), &[])?;
    let fc1 = net.linear(x, "fc1", 784, 256)?;
    let h1 = net.relu_dropout(fc1, "dropout1", 0.5, 0)?;
    let fc2 = net.linear(h1, "fc2", 256, 128)?;
    let h2 = net.relu_dropout(fc2, "dropout2", 0.5, 1)?;
    let logits = net.linear(h2, "fc3", 128, 10)?;
    net.graph.add_output("logits", logits)?;
    dropjit::graph::verify::verify(&net.graph)?;
    println!("{}", net.graph);

    let Net {
        graph,
        mut values,
        mut generator,
    } = net;
    values.insert("x".into(), generator.normal([32, 784], 0.0, 1.0)?);
    for mode in [Mode::Train, Mode::Train, Mode::Eval, Mode::Eval] {
        let step = generator.step();
        let outputs = interp::run(&graph, mode, &mut generator, &values)?;
        let logits = &outputs[0].1;
        println!(
            "{mode:?} at step {step}: logits {} mean {:+.5} fingerprint {:016x}",
            logits.ty(),
            logits.mean(),
            logits.fnv1a64()
        );
    }
    Ok(())
}

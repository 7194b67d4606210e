//! Gradient checks for the autodiff tests: a graph's gradients (from `autodiff::gradients`,
//! run on the f64 interpreter) against central finite differences of its loss (the forward
//! graph, also in f64), with dropout masks held fixed by running every evaluation at the same
//! (seed, step); and the JIT's gradients against the interpreter's.

use std::collections::BTreeMap;

use dropjit::interp::{self, Value, ValueF64};
use dropjit::{
    Compiler, Gemm, Generator, Graph, Mode, NodeId, Op, ParameterStore, Tensor, TensorType,
    autodiff, init,
};

use super::compare::{Agreement, compare};

/// The step finite differences perturb by (in f64).
pub const STEP: f64 = 1e-6;

/// `graph` with a scalar `loss` output: `sum(y * loss_w)`, `loss_w` an input of `y`'s type
/// (random weights make every element of `y` count differently).
pub fn weighted_loss(mut graph: Graph, y: &str) -> Graph {
    let y = graph.lookup(y).expect("the node to weigh");
    let ty = graph[y].ty.clone();
    let w = graph
        .add("loss_w", Op::Input(ty), &[])
        .expect("a fresh input");
    let mul = Op::Binary(dropjit::graph::BinaryOp::Mul);
    let p = graph.add("loss_p", mul, &[y, w]).expect("same shapes");
    let sum = Op::Reduce {
        op: dropjit::graph::ReduceOp::Sum,
        axes: Vec::new(),
        keepdim: false,
    };
    let loss = graph.add("loss", sum, &[p]).expect("a scalar");
    graph.add_output("loss", loss).expect("a free output name");
    graph
}

/// `graph` extended with the gradients of `loss` with respect to `wrt` (names), each an
/// output named like its node; returns the graph and the output names in `wrt` order.
pub fn with_gradients(graph: &Graph, wrt: &[&str]) -> (Graph, Vec<String>) {
    let mut graph = graph.clone();
    let loss = graph.lookup("loss").expect("a loss node");
    let wrt: Vec<NodeId> = wrt
        .iter()
        .map(|n| graph.lookup(n).expect("a wrt node"))
        .collect();
    let grads = autodiff::gradients(&mut graph, loss, &wrt).expect("the graph differentiates");
    let mut names = Vec::new();
    for grad in grads {
        let name = graph[grad].name.clone();
        if graph.outputs().iter().all(|o| o.name != name) {
            graph
                .add_output(name.clone(), grad)
                .expect("a free output name");
        }
        names.push(name);
    }
    (graph, names)
}

/// Every f32 input and parameter of `graph` except the loss weights.
pub fn f32_leaves(graph: &Graph) -> Vec<String> {
    let leaves = graph.inputs().into_iter().chain(graph.parameters());
    leaves
        .filter(|&id| graph[id].ty == TensorType::f32(graph[id].ty.shape.clone()))
        .map(|id| graph[id].name.clone())
        .filter(|name| name != "loss_w")
        .collect()
}

fn f64_values(values: &BTreeMap<String, Tensor>) -> BTreeMap<String, ValueF64> {
    values
        .iter()
        .map(|(k, v)| (k.clone(), Value::from_tensor(v)))
        .collect()
}

fn loss_f64(graph: &Graph, mode: Mode, values: &BTreeMap<String, ValueF64>, seed: u64) -> f64 {
    let outputs = interp::run_f64(graph, mode, &mut Generator::new(seed), values)
        .expect("the forward graph runs");
    let (_, loss) = outputs
        .iter()
        .find(|(n, _)| n == "loss")
        .expect("a loss output");
    loss.as_float().expect("an f32 loss").data[0]
}

/// Checks the gradients of `graph`'s `loss` with respect to `wrt` against central
/// differences, on at most `samples` elements of each (spread evenly): they must agree within
/// `tolerance * (1 + |analytic|)`. Inputs come from `init::random_values(graph, seed)`.
pub fn check_finite_differences(
    graph: &Graph,
    wrt: &[&str],
    seed: u64,
    samples: usize,
    tolerance: f64,
) -> Result<(), String> {
    check_finite_differences_in(Mode::Train, graph, wrt, seed, samples, tolerance)
}

/// [`check_finite_differences`] with every run in `mode`.
pub fn check_finite_differences_in(
    mode: Mode,
    graph: &Graph,
    wrt: &[&str],
    seed: u64,
    samples: usize,
    tolerance: f64,
) -> Result<(), String> {
    let values = init::random_values(graph, seed).unwrap();
    let (grad_graph, names) = with_gradients(graph, wrt);
    let base = f64_values(&values);
    let outputs = interp::run_f64(&grad_graph, mode, &mut Generator::new(seed), &base)
        .map_err(|e| format!("the gradient graph fails: {e}"))?;
    for (x, name) in wrt.iter().zip(&names) {
        let (_, grad) = outputs
            .iter()
            .find(|(n, _)| n == name)
            .expect("a gradient output");
        let grad = &grad.as_float().expect("f32 gradients").data;
        let n = grad.len();
        for k in 0..samples.min(n) {
            let i = k * n / samples.min(n);
            let shifted = |delta: f64| {
                let mut values = base.clone();
                let Some(Value::Float(array)) = values.get_mut(*x) else {
                    panic!("{x} is an f32 leaf");
                };
                array.data[i] += delta;
                loss_f64(graph, mode, &values, seed)
            };
            let numeric = (shifted(STEP) - shifted(-STEP)) / (2.0 * STEP);
            let analytic = grad[i];
            if (numeric - analytic).abs() > tolerance * (1.0 + analytic.abs()) {
                return Err(format!(
                    "d loss / d {x}[{i}]: autodiff {analytic}, central difference {numeric}\n{grad_graph}"
                ));
            }
        }
    }
    Ok(())
}

/// Runs `graph` on the interpreter and compiled (train mode, the same seed and step), and
/// compares every output with `agreement`.
pub fn check_jit(graph: &Graph, seed: u64, gemm: Gemm, agreement: Agreement) -> Result<(), String> {
    check_jit_in(Mode::Train, graph, seed, gemm, agreement)
}

/// [`check_jit`] in `mode`.
pub fn check_jit_in(
    mode: Mode,
    graph: &Graph,
    seed: u64,
    gemm: Gemm,
    agreement: Agreement,
) -> Result<(), String> {
    let values = init::random_values(graph, seed).unwrap();
    let expected = interp::run(graph, mode, &mut Generator::new(seed), &values)
        .map_err(|e| format!("interpreter: {e}"))?;
    let compiled = Compiler::new()
        .mode(mode)
        .verify(true)
        .gemm(gemm)
        .compile(graph)
        .map_err(|e| format!("compiling: {e}\n{graph}"))?;
    let (inputs, params): (BTreeMap<String, Tensor>, ParameterStore) =
        ParameterStore::split(graph, values);
    let got = compiled
        .run(&mut Generator::new(seed), &inputs, &params)
        .map_err(|e| format!("JIT: {e}"))?;
    for ((name, e), (_, g)) in expected.iter().zip(&got) {
        compare(e, g, agreement).map_err(|m| format!("output {name}: {m}\n{graph}"))?;
    }
    Ok(())
}

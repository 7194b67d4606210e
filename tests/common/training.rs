//! Training graphs for the autodiff tests: SimpleNet's forward with a cross-entropy loss, and
//! the same graph extended by `autodiff::gradients` with every parameter's gradient.

use dropjit::{Graph, autodiff, text};

/// SimpleNet (`ir/simple_net.ir`) with i32 `targets` and the mean cross-entropy `loss` as its
/// one output, instead of the logits.
pub fn simple_net_loss() -> Graph {
    let source = include_str!("../../ir/simple_net.ir").replace(
        "  output logits = %fc3\n",
        "  %targets: i32[32] = input\n  %loss: f32[] = cross_entropy %fc3, %targets\n  output loss = %loss\n",
    );
    let mut graph = text::parse(&source).expect("simple_net with a loss parses");
    // The graph keeps its name: `simple_net_grad` is the file, the transform is the content.
    graph = rename(graph, "simple_net_grad");
    graph
}

/// SimpleNet's training graph: the loss and, as outputs named like the nodes, the gradient
/// of every parameter (`fc1.weight.grad`, ...), in parameter order.
pub fn simple_net_grad() -> Graph {
    let mut graph = simple_net_loss();
    let loss = graph.lookup("loss").expect("the loss node");
    let parameters = graph.parameters();
    let grads =
        autodiff::gradients(&mut graph, loss, &parameters).expect("SimpleNet differentiates");
    for grad in grads {
        let name = graph[grad].name.clone();
        graph
            .add_output(name, grad)
            .expect("gradient names are free as outputs");
    }
    graph
}

/// `graph` under another name (printed and parsed back).
fn rename(graph: Graph, name: &str) -> Graph {
    let printed = graph.to_string();
    let body = printed
        .split_once('{')
        .expect("a printed graph has a body")
        .1;
    text::parse(&format!("graph {name} {{{body}")).expect("a printed graph parses")
}

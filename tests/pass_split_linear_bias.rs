//! The `split_linear_bias` pass end to end: a linear read once, by an element-wise node,
//! becomes `add(<name>.gemm, bias)` in both modes, the add fuses with the activation and dropout after
//! it into one vector kernel, and the values stay the interpreter's on the unsplit graph, bit
//! for bit (with the interpreter's summation order for the product).

use std::collections::BTreeMap;

use dropjit::{
    Compiler, Gemm, Generator, Mode, ParameterStore, Tensor, init, interp, passes, text,
};

/// SimpleNet's shape, small: two hidden layers (rows of 16 and 8 features) whose linears are
/// read by relu, an output linear read by a softmax, and a fourth linear that is an output:
/// those two stay whole.
const NET: &str = "graph net {
  %x: f32[20, 12] = input
  %fc1.weight: f32[16, 12] = parameter
  %fc1.bias: f32[16] = parameter
  %fc2.weight: f32[8, 16] = parameter
  %fc2.bias: f32[8] = parameter
  %fc3.weight: f32[3, 8] = parameter
  %fc3.bias: f32[3] = parameter
  %fc1: f32[20, 16] = linear %x, %fc1.weight, %fc1.bias
  %h1: f32[20, 16] = relu %fc1
  %d1: f32[20, 16] = dropout %h1 {p = 0.5, stream = 0}
  %fc2: f32[20, 8] = linear %d1, %fc2.weight, %fc2.bias
  %h2: f32[20, 8] = relu %fc2
  %d2: f32[20, 8] = dropout %h2 {p = 0.25, stream = 1}
  %fc3: f32[20, 3] = linear %d2, %fc3.weight, %fc3.bias
  %y: f32[20, 3] = softmax %fc3 {axis = 1}
  %fc4: f32[20, 16] = linear %x, %fc1.weight, %fc1.bias
  %h4: f32[20, 16] = relu %fc4
  output y = %y
  output fc4 = %fc4
  output h4 = %h4
}";

#[test]
fn hidden_linears_split_and_the_output_linear_stays() {
    let graph = text::parse(NET).expect("a valid graph");
    for mode in [Mode::Train, Mode::Eval] {
        let optimized = passes::optimize(&graph, mode).expect("optimizes");
        let text = optimized.to_string();
        for layer in ["fc1", "fc2"] {
            let gemm = format!("%{layer}.gemm: f32[20, ");
            let add = format!("= add %{layer}.gemm, %{layer}.bias\n");
            assert!(
                text.contains(&gemm) && text.contains(&add),
                "{mode:?}:\n{text}"
            );
        }
        let whole = "%fc3: f32[20, 3] = linear ";
        assert!(
            text.contains(whole) && text.contains(", %fc3.weight, %fc3.bias\n"),
            "{text}"
        );
        assert!(text.contains("%fc4: f32[20, 16] = linear %x, "), "{text}");
    }
}

#[test]
fn the_bias_add_fuses_with_relu_and_dropout_into_one_vector_kernel() {
    let graph = text::parse(NET).expect("a valid graph");
    let compiled = (Compiler::new().mode(Mode::Train))
        .compile(&graph)
        .expect("compiles");
    let g = compiled.graph();
    let names = |nodes: &[dropjit::NodeId]| -> Vec<String> {
        nodes.iter().map(|&id| g[id].name.clone()).collect()
    };
    let kernels: Vec<Vec<String>> = (compiled.schedule().kernels.iter())
        .map(|k| names(&k.nodes))
        .collect();
    assert!(
        kernels.contains(&vec!["fc1".into(), "h1".into(), "d1".into()]),
        "{kernels:?}"
    );
    assert!(
        kernels.contains(&vec!["fc2".into(), "h2".into(), "d2".into()]),
        "{kernels:?}"
    );
    assert!(compiled.clif().contains("f32x4"));
}

/// Each output's name and bytes, so `-0.0` and `0.0` differ.
fn bits(outputs: &[(String, Tensor)]) -> Vec<(String, Vec<u8>)> {
    (outputs.iter())
        .map(|(name, t)| (name.clone(), t.to_le_bytes()))
        .collect()
}

#[test]
fn values_are_the_unsplit_interpreters_bit_for_bit() {
    let graph = text::parse(NET).expect("a valid graph");
    let values = init::random_values(&graph, 7).unwrap();
    for mode in [Mode::Train, Mode::Eval] {
        let expected = interp::run(&graph, mode, &mut Generator::new(4), &values).expect("runs");
        let expected = bits(&expected);
        let optimized = passes::optimize(&graph, mode).expect("optimizes");
        let split = interp::run(&optimized, mode, &mut Generator::new(4), &values).expect("runs");
        assert_eq!(
            bits(&split),
            expected,
            "{mode:?}: interpreter on the split graph"
        );
        let (inputs, params): (BTreeMap<String, Tensor>, ParameterStore) =
            ParameterStore::split(&graph, values.clone());
        for threads in [1, 2] {
            let compiled = (Compiler::new().mode(mode).gemm(Gemm::Reference))
                .threads(threads)
                .compile(&graph)
                .expect("compiles");
            let got = compiled.run(&mut Generator::new(4), &inputs, &params);
            assert_eq!(
                bits(&got.expect("runs")),
                expected,
                "{mode:?}, {threads} threads"
            );
        }
    }
}

//! The PyTorch fixtures' text format (`tests/fixtures/{conv,pool}/forward.txt`, written by the
//! `make_fixtures.py` beside each): `case NAME OP key=value ...` then `tensor ROLE DIMS v...`
//! lines, dims as `2x3x5` (`-` for a scalar), values as f32 bit patterns in hex, and
//! `indices DIMS i...` lines of i32 indices in decimal.

use std::collections::BTreeMap;

use dropjit::graph::{Builder, Naming};
use dropjit::{Graph, NodeId, Tensor, TensorType, autodiff};

/// One case: its op, its attributes in file order, and its tensors by role (`x`, `y`, ...).
pub struct FixtureCase {
    pub name: String,
    pub op: String,
    pub attrs: Vec<(String, String)>,
    pub tensors: BTreeMap<String, Tensor>,
}

impl FixtureCase {
    /// The attribute `key` as written (`1,2`, `true`).
    pub fn attr(&self, key: &str) -> &str {
        let found = self.attrs.iter().find(|(k, _)| k == key);
        &found
            .unwrap_or_else(|| panic!("{}: no attribute {key}", self.name))
            .1
    }

    /// The tensor of `role`.
    pub fn tensor(&self, role: &str) -> &Tensor {
        let found = self.tensors.get(role);
        found.unwrap_or_else(|| panic!("{}: no tensor {role}", self.name))
    }
}

/// `2x3x5` as dimensions; `-` is a scalar's.
fn dims(word: &str) -> Vec<usize> {
    if word == "-" {
        return Vec::new();
    }
    word.split('x').map(|d| d.parse().unwrap()).collect()
}

/// Every case of a fixture file's `text`.
pub fn read(text: &str) -> Vec<FixtureCase> {
    let mut cases: Vec<FixtureCase> = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[0] {
            "case" => cases.push(FixtureCase {
                name: words[1].to_string(),
                op: words[2].to_string(),
                attrs: (words[3..].iter())
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').expect("key=value");
                        (k.to_string(), v.to_string())
                    })
                    .collect(),
                tensors: BTreeMap::new(),
            }),
            "tensor" => {
                let values = (words[3..].iter())
                    .map(|w| f32::from_bits(u32::from_str_radix(w, 16).unwrap()))
                    .collect();
                let tensor = Tensor::from_f32(dims(words[2]), values).unwrap();
                let case = cases.last_mut().expect("a case first");
                case.tensors.insert(words[1].to_string(), tensor);
            }
            // i32 indices, in decimal: the tensor `indices`.
            "indices" => {
                let values = (words[2..].iter()).map(|w| w.parse().unwrap()).collect();
                let tensor = Tensor::from_i32(dims(words[1]), values).unwrap();
                let case = cases.last_mut().expect("a case first");
                case.tensors.insert("indices".to_string(), tensor);
            }
            other => panic!("unknown fixture line {other}"),
        }
    }
    cases
}

/// What PyTorch's `y.backward(gy)` computes, as graph outputs: adds `loss = sum(y * gy)` (`gy`
/// a new input of type `gy`) and, for each `(leaf, output)` of `wrt`, the gradient of the
/// leaf named `leaf` as output `output`.
pub fn add_vjp_outputs(graph: &mut Graph, y: NodeId, gy: TensorType, wrt: &[(&str, &str)]) {
    let mut b = Builder::new(graph, Naming::Exact);
    let gy = b.input("gy", gy).unwrap();
    let product = b.mul("product", y, gy).unwrap();
    let loss = b.sum("loss", product, Vec::new(), false).unwrap();
    let ids: Vec<NodeId> = (wrt.iter())
        .map(|(leaf, _)| graph.lookup(leaf).unwrap())
        .collect();
    let grads = autodiff::gradients(graph, loss, &ids).unwrap();
    for ((_, output), grad) in wrt.iter().zip(grads) {
        graph.add_output(*output, grad).unwrap();
    }
}

//! Invalid optimizer hyperparameters are typed errors in PyTorch's words.

use dropjit::Error;
use dropjit::optim::{Adam, AdamW, Optimizer, Sgd};

fn names() -> Vec<String> {
    vec!["w".to_string()]
}

#[test]
fn sgd_rejects_what_torch_optim_sgd_rejects() {
    let n = names();
    let message = |e: Error| e.to_string();
    assert_eq!(
        message(Sgd::new(&n[..], -0.1).unwrap_err()),
        "Invalid learning rate: -0.1"
    );
    assert_eq!(
        message(Sgd::new(&n[..], f64::NAN).unwrap_err()),
        "Invalid learning rate: nan"
    );
    let sgd = || Sgd::new(&n[..], 0.1).unwrap();
    assert_eq!(
        message(sgd().momentum(-1.0).unwrap_err()),
        "Invalid momentum value: -1.0"
    );
    assert_eq!(
        message(sgd().weight_decay(-1e-5).unwrap_err()),
        "Invalid weight_decay value: -1e-05"
    );
    assert!(matches!(
        sgd().nesterov(true).unwrap_err(),
        Error::Nesterov {
            momentum: 0.0,
            dampening: 0.0
        }
    ));
    let err = sgd()
        .momentum(0.9)
        .and_then(|s| s.dampening(0.1))
        .and_then(|s| s.nesterov(true));
    assert_eq!(
        message(err.unwrap_err()),
        "Nesterov momentum requires a momentum and zero dampening, but got momentum=0.9 and dampening=0.1"
    );
    let mut ok = sgd().momentum(0.9).unwrap().nesterov(true).unwrap();
    assert_eq!(ok.structure(), "sgd momentum nesterov");
    assert!(matches!(
        ok.set_lr(-1.0),
        Err(Error::Hyperparameter {
            what: "learning rate",
            ..
        })
    ));
    assert_eq!(ok.lr(), 0.1);
}

#[test]
fn adam_rejects_what_torch_optim_adam_rejects() {
    let n = names();
    let message = |e: Error| e.to_string();
    assert_eq!(
        message(Adam::new(&n[..], -1e-3).unwrap_err()),
        "Invalid learning rate: -0.001"
    );
    let adam = || Adam::new(&n[..], 1e-3).unwrap();
    assert_eq!(
        message(adam().betas(0.9, 1.0).unwrap_err()),
        "Invalid beta parameter at index 1: 1.0"
    );
    assert_eq!(
        message(adam().betas(-0.1, 0.9).unwrap_err()),
        "Invalid beta parameter at index 0: -0.1"
    );
    assert_eq!(
        message(adam().eps(-1e-8).unwrap_err()),
        "Invalid epsilon value: -1e-08"
    );
    assert_eq!(
        message(
            AdamW::new(&n[..], 1e-3)
                .unwrap()
                .weight_decay(-0.01)
                .unwrap_err()
        ),
        "Invalid weight_decay value: -0.01"
    );
}

#[test]
fn defaults_are_torch_optim_defaults() {
    let n = names();
    assert_eq!(
        Sgd::new(&n[..], 1e-3).unwrap().describe(),
        "SGD(lr=0.001, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False)"
    );
    assert_eq!(
        Adam::new(&n[..], 1e-3).unwrap().describe(),
        "Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, amsgrad=False)"
    );
    let adamw = AdamW::new(&n[..], 1e-3).unwrap();
    assert!(adamw.is_decoupled());
    assert_eq!(adamw.state_names(), ["exp_avg", "exp_avg_sq"]);
    assert_eq!(
        adamw.amsgrad(true).state_names(),
        ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
    );
}

#[test]
fn a_compiled_step_checks_that_its_graph_ends_with_the_updates() {
    use dropjit::optim::{Updated, add_updates};
    use dropjit::train::CompiledStep;
    use dropjit::{Compiler, Graph, Op, TensorType};
    let n = names();
    let sgd = Sgd::new(&n[..], 0.1).unwrap().momentum(0.9).unwrap();
    let mut graph = Graph::new("update");
    let w = graph
        .add("w", Op::Parameter(TensorType::f32([3])), &[])
        .unwrap();
    let g = graph
        .add("g", Op::Input(TensorType::f32([3])), &[])
        .unwrap();
    let mut updated = add_updates(&mut graph, &sgd, &[(w, g)]).unwrap();
    assert_eq!(
        updated,
        [
            Updated {
                entry: "w".into(),
                output: "w.next".into()
            },
            Updated {
                entry: "w.momentum_buffer".into(),
                output: "w.momentum_buffer.next".into()
            },
        ]
    );
    let compiled = std::sync::Arc::new(Compiler::new().compile(&graph).unwrap());
    updated.swap(0, 1);
    let err = CompiledStep::new(compiled, updated)
        .err()
        .expect("a mismatch");
    assert_eq!(
        err.to_string(),
        "output 0 has to be the update of w.momentum_buffer, but got w.next"
    );
}

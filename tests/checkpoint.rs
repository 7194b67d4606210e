//! Checkpoints: a saved and loaded run continues bit for bit; files that do not fit the
//! model are typed errors naming the entry; the file is standard safetensors.

use std::path::PathBuf;

use dropjit::nn;
use dropjit::optim::{Adam, Optimizer, Sgd};
use dropjit::train::Loss;
use dropjit::{Error, Generator, Tensor};

fn mlp(hidden: usize) -> nn::Traced<nn::Sequential> {
    let mut g = Generator::new(1);
    nn::Traced::new(nn::Sequential::new(vec![
        Box::new(nn::Linear::new(6, hidden, &mut g).unwrap()),
        Box::new(nn::ReLU),
        Box::new(nn::Dropout::new(0.3).unwrap()),
        Box::new(nn::Linear::new(hidden, 3, &mut g).unwrap()),
    ]))
}

fn data() -> (Tensor, Tensor) {
    let mut g = Generator::new(2);
    (
        g.normal([8, 6], 0.0, 1.0).unwrap(),
        g.randint([8], 0, 3).unwrap(),
    )
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("dropjit_{}_{name}.safetensors", std::process::id()))
}

fn train(
    model: &mut nn::Traced<nn::Sequential>,
    opt: &mut dyn Optimizer,
    generator: &mut Generator,
    steps: usize,
) {
    let (x, targets) = data();
    for _ in 0..steps {
        model
            .train_step_with(&x, &targets, Loss::CrossEntropy, opt, generator)
            .unwrap();
    }
}

fn snapshot(model: &nn::Traced<nn::Sequential>) -> Vec<(String, Vec<u8>)> {
    (model.parameters().iter())
        .map(|(name, t)| (name.to_string(), t.to_le_bytes()))
        .collect()
}

/// Builds an optimizer for a model.
type MakeOptimizer = fn(&nn::Traced<nn::Sequential>) -> Box<dyn Optimizer>;

#[test]
fn a_resumed_run_continues_bit_identically() {
    let optimizers: [MakeOptimizer; 2] = [
        |m| Box::new(Sgd::new(m, 0.1).unwrap().momentum(0.9).unwrap()),
        |m| Box::new(Adam::new(m, 0.01).unwrap().amsgrad(true)),
    ];
    for make in optimizers {
        let path = temp_path("resume");
        let mut model = mlp(16);
        let mut opt = make(&model);
        let mut generator = Generator::new(3);
        train(&mut model, opt.as_mut(), &mut generator, 3);
        let _ = generator.normal([2], 0.0, 1.0).unwrap(); // a host-side draw (a shuffle, say)
        model
            .save_checkpoint(&path, opt.as_ref(), &generator)
            .unwrap();
        let after_save = generator.normal([5], 0.0, 1.0).unwrap();
        train(&mut model, opt.as_mut(), &mut generator, 3);
        let straight = snapshot(&model);

        // A fresh process: a model built from scratch, a fresh optimizer.
        let mut resumed = mlp(16);
        let mut opt2 = make(&resumed);
        let mut generator2 = resumed.load_checkpoint(&path, opt2.as_mut()).unwrap();
        assert_eq!((generator2.seed(), generator2.step()), (3, 3));
        assert_eq!(generator2.normal([5], 0.0, 1.0).unwrap(), after_save);
        assert_eq!(opt2.steps(), 3);
        train(&mut resumed, opt2.as_mut(), &mut generator2, 3);
        assert_eq!(snapshot(&resumed), straight, "{}", opt.describe());
        assert_eq!(opt2.steps(), 6);
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn the_file_is_plain_safetensors() {
    let path = temp_path("format");
    let model = mlp(4);
    let opt = Sgd::new(&model, 0.1).unwrap().momentum(0.9).unwrap();
    model
        .save_checkpoint(&path, &opt, &Generator::new(5).with_step(7))
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + header_len]).unwrap();
    for expected in [
        r#""__metadata__":{"#,
        r#""generator.seed":"5""#,
        r#""generator.step":"7""#,
        r#""generator.host_streams":"0""#,
        r#""optimizer.steps":"0""#,
        r#""0.weight":{"dtype":"F32","shape":[4,6],"data_offsets":["#,
        r#""0.weight.momentum_buffer":{"dtype":"F32","shape":[4,6]"#,
    ] {
        assert!(header.contains(expected), "{expected} not in {header}");
    }
    // Every parameter and one momentum buffer each: 4 + 4 entries of f32.
    let data_bytes = (4 * 6 + 4 + 3 * 4 + 3) * 4 * 2;
    assert_eq!(bytes.len(), 8 + header_len + data_bytes);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn checkpoints_that_do_not_fit_are_typed_errors_and_change_nothing() {
    let path = temp_path("mismatch");
    let small = mlp(4);
    let opt = Sgd::new(&small, 0.1).unwrap();
    small
        .save_checkpoint(&path, &opt, &Generator::new(0))
        .unwrap();

    // Another hidden width: the first entry that differs is named with both types.
    let mut wide = mlp(5);
    let before = wide.parameter("0.weight").unwrap().clone();
    let mut opt = Sgd::new(&wide, 0.1).unwrap();
    let err = wide.load_checkpoint(&path, &mut opt).unwrap_err();
    let message = err.to_string();
    assert!(
        message.ends_with(
            "0.weight has to be f32[5, 6] for this model and optimizer, but the checkpoint holds f32[4, 6]"
        ),
        "{message}"
    );
    assert_eq!(wide.parameter("0.weight").unwrap(), &before);

    // The same model with momentum needs buffers the file lacks.
    let mut same = mlp(4);
    let mut momentum = Sgd::new(&same, 0.1).unwrap().momentum(0.9).unwrap();
    let err = same.load_checkpoint(&path, &mut momentum).unwrap_err();
    assert!(
        matches!(&err, Error::CheckpointMismatch { name, got, .. }
            if name == "0.weight.momentum_buffer" && got == "nothing"),
        "{err}"
    );
    assert_eq!(momentum.steps(), 0);

    // And a file with entries the model lacks.
    let with_buffers = temp_path("extra");
    let opt = Sgd::new(&same, 0.1).unwrap().momentum(0.9).unwrap();
    same.save_checkpoint(&with_buffers, &opt, &Generator::new(0))
        .unwrap();
    let mut plain = Sgd::new(&same, 0.1).unwrap();
    let err = same.load_checkpoint(&with_buffers, &mut plain).unwrap_err();
    assert!(
        matches!(&err, Error::CheckpointMismatch { expected, .. } if expected == "nothing"),
        "{err}"
    );

    // Not a checkpoint at all.
    std::fs::write(&path, b"not a safetensors file").unwrap();
    let err = same.load_checkpoint(&path, &mut plain).unwrap_err();
    assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
    let err = same
        .load_checkpoint(temp_path("missing"), &mut plain)
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_file(&with_buffers).unwrap();
}

#[test]
fn a_failed_save_leaves_the_previous_checkpoint_as_it_was() {
    // Saves are atomic (dropjit::fs_atomic): the bytes go to a temporary file beside the
    // checkpoint and replace it by a rename only once complete. A directory standing where
    // the checkpoint goes makes the rename fail deterministically (chmod does not stop root).
    let dir = std::env::temp_dir().join(format!("dropjit_{}_failed_save", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let model = mlp(4);
    let opt = Sgd::new(&model, 0.1).unwrap();
    let good = dir.join("good.safetensors");
    model
        .save_checkpoint(&good, &opt, &Generator::new(0))
        .unwrap();
    let before = std::fs::read(&good).unwrap();
    // Saving again over it replaces it whole and leaves no temporary file behind.
    model
        .save_checkpoint(&good, &opt, &Generator::new(1))
        .unwrap();
    assert_ne!(std::fs::read(&good).unwrap(), before);

    let blocked = dir.join("blocked.safetensors");
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("inside"), b"kept").unwrap();
    let err = model
        .save_checkpoint(&blocked, &opt, &Generator::new(0))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if path == &blocked),
        "{err}"
    );
    assert_eq!(std::fs::read(blocked.join("inside")).unwrap(), b"kept");
    let mut names: Vec<String> = (std::fs::read_dir(&dir).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["blocked.safetensors", "good.safetensors"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

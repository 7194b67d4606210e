//! Models that more than one program builds: the demos, the examples, the benches and the
//! tests take them from here rather than each writing its own copy, so they all train, time
//! and snapshot the same network (the same layers, node names and initial weights).
//!
//! - [`SimpleNet`]: the seed page's `Linear -> ReLU -> Dropout` stack, in its exact shape
//!   ([`SimpleNet::mnist`]) or with other widths and rates ([`SimpleNet::new`]);
//! - [`DigitsCnn`]: two 3x3 convolutions, max pooling and Dropout2d on the 8x8 digits;
//! - [`MnistNet`]: the classic PyTorch MNIST example network the CNN benchmarks time;
//! - [`CausalSelfAttention`] and [`Gpt`]: nanoGPT's attention and model.

mod attention;
mod digits_cnn;
mod gpt;
mod mnist_net;
mod simple_net;

pub use attention::CausalSelfAttention;
pub use digits_cnn::DigitsCnn;
pub use gpt::{Gpt, GptConfig};
pub use mnist_net::MnistNet;
pub use simple_net::SimpleNet;

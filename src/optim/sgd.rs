//! [`Sgd`]: `torch.optim.SGD` as `_single_tensor_sgd` computes it.

use super::{Optimizer, Parameters, Schedule, UpdateNodes, check};
use crate::error::{Error, Result, python_float};
use crate::graph::{Builder, NodeId};

/// Stochastic gradient descent with PyTorch's defaults (lr 1e-3, momentum 0, dampening 0,
/// nesterov off, weight_decay 0) and formulas, per parameter `p` with gradient `g`:
///
/// ```text
/// g = g + weight_decay * p                 if weight_decay != 0
/// buf = g (first step), buf * momentum + (1 - dampening) * g (later)   if momentum != 0
/// g = g + momentum * buf (nesterov), buf (otherwise)                   if momentum != 0
/// p = p - lr * g
/// ```
///
/// The first step's `buf = clone(g)` is the later formula with scalars `0` and `1` on a zero
/// buffer (`0 * 0 + 1 * g = g`; only a `-0.0` gradient becomes `+0.0`), so one graph serves
/// every step: `optim.buffer_decay` is 0 then `momentum`, `optim.grad_scale` 1 then
/// `1 - dampening`.
///
/// ```
/// # fn main() -> dropjit::Result<()> {
/// use dropjit::optim::{Optimizer, Sgd};
/// let names = ["w".to_string()];
/// let sgd = Sgd::new(&names[..], 0.1)?.momentum(0.9)?.nesterov(true)?;
/// assert_eq!(sgd.describe(), "SGD(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=True)");
/// assert_eq!(Sgd::new(&names[..], -0.1).unwrap_err().to_string(), "Invalid learning rate: -0.1");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Sgd {
    params: Vec<String>,
    schedule: Schedule,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    weight_decay: f64,
}

impl Sgd {
    /// SGD over every parameter of `params` with learning rate `lr` (`Invalid learning rate`
    /// if negative or NaN) and the other settings at PyTorch's defaults.
    pub fn new<P: Parameters + ?Sized>(params: &P, lr: f64) -> Result<Sgd> {
        Ok(Sgd {
            params: params.parameter_names(),
            schedule: Schedule::new(lr)?,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        })
    }

    /// Sets the momentum factor (`Invalid momentum value` if negative).
    pub fn momentum(mut self, momentum: f64) -> Result<Sgd> {
        check(momentum >= 0.0, "momentum value", momentum)?;
        self.momentum = momentum;
        self.check_nesterov()?;
        Ok(self)
    }

    /// Sets the dampening of the momentum (later steps scale the gradient by `1 - dampening`).
    pub fn dampening(mut self, dampening: f64) -> Result<Sgd> {
        check(dampening.is_finite(), "dampening value", dampening)?;
        self.dampening = dampening;
        self.check_nesterov()?;
        Ok(self)
    }

    /// Switches Nesterov momentum on or off; on, it needs momentum > 0 and dampening 0 (set
    /// them first).
    pub fn nesterov(mut self, nesterov: bool) -> Result<Sgd> {
        self.nesterov = nesterov;
        self.check_nesterov()?;
        Ok(self)
    }

    /// Sets the L2 penalty added to the gradient (`Invalid weight_decay value` if negative).
    pub fn weight_decay(mut self, weight_decay: f64) -> Result<Sgd> {
        check(weight_decay >= 0.0, "weight_decay value", weight_decay)?;
        self.weight_decay = weight_decay;
        Ok(self)
    }

    fn check_nesterov(&self) -> Result<()> {
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::Nesterov {
                momentum: self.momentum,
                dampening: self.dampening,
            });
        }
        Ok(())
    }
}

impl Optimizer for Sgd {
    fn parameters(&self) -> &[String] {
        &self.params
    }

    fn structure(&self) -> String {
        let flags = [
            (self.momentum != 0.0, " momentum"),
            (self.nesterov, " nesterov"),
            (self.weight_decay != 0.0, " weight_decay"),
        ];
        let set: String = flags
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, f)| *f)
            .collect();
        format!("sgd{set}")
    }

    fn describe(&self) -> String {
        format!(
            "SGD(lr={}, momentum={}, dampening={}, weight_decay={}, nesterov={})",
            python_float(self.lr()),
            python_float(self.momentum),
            python_float(self.dampening),
            python_float(self.weight_decay),
            if self.nesterov { "True" } else { "False" }
        )
    }

    fn state_names(&self) -> Vec<&'static str> {
        if self.momentum != 0.0 {
            vec!["momentum_buffer"]
        } else {
            Vec::new()
        }
    }

    fn scalars(&self, steps: u64) -> Vec<(&'static str, f32)> {
        let mut scalars = vec![("lr", self.lr() as f32)];
        if self.weight_decay != 0.0 {
            scalars.push(("weight_decay", self.weight_decay as f32));
        }
        if self.momentum != 0.0 {
            let first = steps == 0;
            let decay = if first { 0.0 } else { self.momentum };
            let scale = if first { 1.0 } else { 1.0 - self.dampening };
            scalars.push(("buffer_decay", decay as f32));
            scalars.push(("grad_scale", scale as f32));
        }
        if self.nesterov {
            scalars.push(("momentum", self.momentum as f32));
        }
        scalars
    }

    fn add_update(&self, b: &mut Builder, u: &UpdateNodes) -> Result<Vec<NodeId>> {
        let name = |what: &str| format!("{}.{what}", u.name);
        let mut grad = u.grad;
        if self.weight_decay != 0.0 {
            // grad.add(param, alpha=weight_decay)
            let decay = b.mul(&name("weight_decay"), u.scalar("weight_decay"), u.param)?;
            grad = b.add(&name("decayed_grad"), grad, decay)?;
        }
        let mut new_state = Vec::new();
        if self.momentum != 0.0 {
            // buf.mul_(momentum).add_(grad, alpha=1 - dampening)
            let kept = b.mul(
                &name("momentum_buffer.kept"),
                u.state[0],
                u.scalar("buffer_decay"),
            )?;
            let added = b.mul(&name("momentum_buffer.added"), u.scalar("grad_scale"), grad)?;
            let buf = b.add(&name("momentum_buffer.next"), kept, added)?;
            new_state.push(buf);
            grad = if self.nesterov {
                // grad.add(buf, alpha=momentum)
                let ahead = b.mul(&name("nesterov"), u.scalar("momentum"), buf)?;
                b.add(&name("nesterov_grad"), grad, ahead)?
            } else {
                buf
            };
        }
        // param.add_(grad, alpha=-lr): p + (-lr) * g rounds like p - lr * g.
        let delta = b.mul(&name("delta"), u.scalar("lr"), grad)?;
        let param = b.sub(&name("next"), u.param, delta)?;
        Ok(std::iter::once(param).chain(new_state).collect())
    }

    fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    fn schedule_mut(&mut self) -> &mut Schedule {
        &mut self.schedule
    }
}

//! [`Adam`] and [`AdamW`]: `torch.optim.Adam`/`AdamW` as `_single_tensor_adam` computes them.

use super::{Optimizer, Parameters, Schedule, UpdateNodes, check};
use crate::error::{Result, python_float};
use crate::graph::{Builder, NodeId};

/// Adam, or AdamW with decoupled weight decay, with PyTorch's defaults (lr 1e-3, betas
/// (0.9, 0.999), eps 1e-8, weight_decay 0 for Adam and 1e-2 for AdamW, amsgrad off) and
/// formulas, per parameter `p` with gradient `g` at step `t` (from 1):
///
/// ```text
/// p = p * (1 - lr * weight_decay)          AdamW, if weight_decay != 0
/// g = g + weight_decay * p                 Adam, if weight_decay != 0
/// m = m.lerp(g, 1 - beta1)                 m + w * (g - m) for w < 0.5, else g - (g - m) * (1 - w)
/// v = v * beta2 + ((1 - beta2) * g) * g
/// v_max = maximum(v_max, v)                amsgrad (the denominator reads v_max)
/// denom = sqrt(v) / sqrt(1 - beta2^t) + eps
/// p = p - ((lr / (1 - beta1^t)) * m) / denom
/// ```
///
/// The bias corrections are computed on the host in f64 from the step count and enter the
/// graph as the scalars `optim.step_size` and `optim.bias_correction2_sqrt`.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    params: Vec<String>,
    schedule: Schedule,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    amsgrad: bool,
    decoupled: bool,
    /// Parameters in a group without weight decay (PyTorch's parameter groups, as nanoGPT
    /// puts biases and layer-norm weights in one with `weight_decay = 0`).
    no_decay: std::collections::BTreeSet<String>,
}

/// `torch.optim.AdamW`: [`Adam`] with decoupled weight decay, default 1e-2.
///
/// ```
/// # fn main() -> dropjit::Result<()> {
/// use dropjit::optim::{AdamW, Optimizer};
/// let names = ["w".to_string()];
/// let adamw = AdamW::new(&names[..], 1e-3)?.betas(0.9, 0.99)?;
/// assert_eq!(adamw.describe(), "AdamW(lr=0.001, betas=(0.9, 0.99), eps=1e-08, weight_decay=0.01, amsgrad=False)");
/// let err = AdamW::new(&names[..], 1e-3)?.betas(1.0, 0.999).unwrap_err();
/// assert_eq!(err.to_string(), "Invalid beta parameter at index 0: 1.0");
/// # Ok(()) }
/// ```
pub struct AdamW;

impl AdamW {
    /// AdamW over every parameter of `params` with learning rate `lr`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new<P: Parameters + ?Sized>(params: &P, lr: f64) -> Result<Adam> {
        let mut adam = Adam::new(params, lr)?;
        adam.decoupled = true;
        adam.weight_decay = 1e-2;
        Ok(adam)
    }
}

impl Adam {
    /// Adam over every parameter of `params` with learning rate `lr` (`Invalid learning
    /// rate` if negative or NaN) and the other settings at PyTorch's defaults.
    pub fn new<P: Parameters + ?Sized>(params: &P, lr: f64) -> Result<Adam> {
        Ok(Adam {
            params: params.parameter_names(),
            schedule: Schedule::new(lr)?,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            decoupled: false,
            no_decay: Default::default(),
        })
    }

    /// Sets the decay rates of the moment averages, each in `[0, 1)`.
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Result<Adam> {
        check(
            (0.0..1.0).contains(&beta1),
            "beta parameter at index 0",
            beta1,
        )?;
        check(
            (0.0..1.0).contains(&beta2),
            "beta parameter at index 1",
            beta2,
        )?;
        self.betas = (beta1, beta2);
        Ok(self)
    }

    /// Sets the term added to the denominator (`Invalid epsilon value` if negative).
    pub fn eps(mut self, eps: f64) -> Result<Adam> {
        check(eps >= 0.0, "epsilon value", eps)?;
        self.eps = eps;
        Ok(self)
    }

    /// Sets the weight decay: an L2 penalty on the gradient for Adam, decoupled
    /// (`p *= 1 - lr * weight_decay`) for AdamW.
    pub fn weight_decay(mut self, weight_decay: f64) -> Result<Adam> {
        check(weight_decay >= 0.0, "weight_decay value", weight_decay)?;
        self.weight_decay = weight_decay;
        Ok(self)
    }

    /// Puts the parameters `names` in a group of their own without weight decay, the rest
    /// keeping it: PyTorch's two parameter groups (`{"params": ..., "weight_decay": 0.0}`),
    /// nanoGPT's split of biases and layer-norm weights (rank < 2) from the matrices and
    /// embeddings. [`Error::UnknownNode`](crate::Error::UnknownNode) for a name the
    /// optimizer does not update.
    pub fn no_weight_decay<S: AsRef<str>>(mut self, names: &[S]) -> Result<Adam> {
        for name in names {
            let name = name.as_ref();
            if !self.params.iter().any(|p| p == name) {
                return Err(crate::error::Error::UnknownNode {
                    name: name.to_string(),
                });
            }
            self.no_decay.insert(name.to_string());
        }
        Ok(self)
    }

    /// The parameters without weight decay ([`Adam::no_weight_decay`]).
    pub fn without_weight_decay(&self) -> impl Iterator<Item = &str> {
        self.no_decay.iter().map(String::as_str)
    }

    /// Uses the maximum of all second moments so far in the denominator (AMSGrad).
    pub fn amsgrad(mut self, amsgrad: bool) -> Adam {
        self.amsgrad = amsgrad;
        self
    }

    /// True for AdamW's decoupled weight decay.
    pub fn is_decoupled(&self) -> bool {
        self.decoupled
    }

    /// `exp_avg.lerp_(grad, w)` computes in f32 with `w = 1 - beta1`; ATen takes
    /// `self + w * (end - self)` for `|w| < 0.5` and `end - (end - self) * (1 - w)` otherwise.
    fn lerp_weight(&self) -> (f32, f32) {
        let w = (1.0 - self.betas.0) as f32;
        (w, 1.0 - w)
    }
}

impl Optimizer for Adam {
    fn parameters(&self) -> &[String] {
        &self.params
    }

    fn structure(&self) -> String {
        let name = if self.decoupled { "adamw" } else { "adam" };
        let small = if self.lerp_weight().0.abs() < 0.5 {
            " small_lerp_weight"
        } else {
            " large_lerp_weight"
        };
        let decay = if self.weight_decay != 0.0 {
            " weight_decay"
        } else {
            ""
        };
        let amsgrad = if self.amsgrad { " amsgrad" } else { "" };
        // Which parameters decay shapes the graph.
        let groups: String = (self.no_decay.iter())
            .map(|n| format!(" no_decay:{n}"))
            .collect();
        format!("{name}{small}{decay}{amsgrad}{groups}")
    }

    fn describe(&self) -> String {
        let groups = if self.no_decay.is_empty() {
            String::new()
        } else {
            let names: Vec<&str> = self.no_decay.iter().map(String::as_str).collect();
            format!(", weight_decay=0.0 for [{}]", names.join(", "))
        };
        format!(
            "{}(lr={}, betas=({}, {}), eps={}, weight_decay={}, amsgrad={}{groups})",
            if self.decoupled { "AdamW" } else { "Adam" },
            python_float(self.lr()),
            python_float(self.betas.0),
            python_float(self.betas.1),
            python_float(self.eps),
            python_float(self.weight_decay),
            if self.amsgrad { "True" } else { "False" }
        )
    }

    fn state_names(&self) -> Vec<&'static str> {
        let mut names = vec!["exp_avg", "exp_avg_sq"];
        if self.amsgrad {
            names.push("max_exp_avg_sq");
        }
        names
    }

    fn scalars(&self, steps: u64) -> Vec<(&'static str, f32)> {
        // As PyTorch: Python floats (f64) from the step count, rounded once into the kernel.
        let step = (steps + 1) as f64;
        let (beta1, beta2) = self.betas;
        let bias_correction1 = 1.0 - beta1.powf(step);
        let bias_correction2 = 1.0 - beta2.powf(step);
        let (w, one_minus_w) = self.lerp_weight();
        let lerp = if w.abs() < 0.5 {
            ("lerp_weight", w)
        } else {
            ("lerp_weight_complement", one_minus_w)
        };
        let mut scalars = vec![
            lerp,
            ("beta2", beta2 as f32),
            ("one_minus_beta2", (1.0 - beta2) as f32),
            ("bias_correction2_sqrt", bias_correction2.sqrt() as f32),
            ("eps", self.eps as f32),
            ("step_size", (self.lr() / bias_correction1) as f32),
        ];
        if self.weight_decay != 0.0 {
            scalars.push(if self.decoupled {
                ("decay_factor", (1.0 - self.lr() * self.weight_decay) as f32)
            } else {
                ("weight_decay", self.weight_decay as f32)
            });
        }
        scalars
    }

    fn add_update(&self, b: &mut Builder, u: &UpdateNodes) -> Result<Vec<NodeId>> {
        let name = |what: &str| format!("{}.{what}", u.name);
        let (mut param, mut grad) = (u.param, u.grad);
        let (exp_avg, exp_avg_sq) = (u.state[0], u.state[1]);
        if self.weight_decay != 0.0 && !self.no_decay.contains(&u.name) {
            if self.decoupled {
                // param.mul_(1 - lr * weight_decay)
                param = b.mul(&name("decayed"), param, u.scalar("decay_factor"))?;
            } else {
                // grad.add(param, alpha=weight_decay)
                let decay = b.mul(&name("weight_decay"), u.scalar("weight_decay"), param)?;
                grad = b.add(&name("decayed_grad"), grad, decay)?;
            }
        }
        // exp_avg.lerp_(grad, 1 - beta1)
        let diff = b.sub(&name("exp_avg.diff"), grad, exp_avg)?;
        let m = if self.lerp_weight().0.abs() < 0.5 {
            let step = b.mul(&name("exp_avg.step"), u.scalar("lerp_weight"), diff)?;
            b.add(&name("exp_avg.next"), exp_avg, step)?
        } else {
            let back = b.mul(
                &name("exp_avg.back"),
                diff,
                u.scalar("lerp_weight_complement"),
            )?;
            b.sub(&name("exp_avg.next"), grad, back)?
        };
        // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        let kept = b.mul(&name("exp_avg_sq.kept"), exp_avg_sq, u.scalar("beta2"))?;
        let scaled = b.mul(
            &name("exp_avg_sq.scaled"),
            u.scalar("one_minus_beta2"),
            grad,
        )?;
        let square = b.mul(&name("exp_avg_sq.square"), scaled, grad)?;
        let v = b.add(&name("exp_avg_sq.next"), kept, square)?;
        let mut new_state = vec![m, v];
        let second = if self.amsgrad {
            // torch.maximum(max_exp_avg_sqs[i], exp_avg_sq, out=max_exp_avg_sqs[i])
            let v_max = b.maximum(&name("max_exp_avg_sq.next"), u.state[2], v)?;
            new_state.push(v_max);
            v_max
        } else {
            v
        };
        // denom = (second.sqrt() / bias_correction2_sqrt).add_(eps)
        let root = b.sqrt(&name("root"), second)?;
        let corrected = b.div(&name("corrected"), root, u.scalar("bias_correction2_sqrt"))?;
        let denom = b.add(&name("denom"), corrected, u.scalar("eps"))?;
        // param.addcdiv_(exp_avg, denom, value=-step_size): p + ((-s) * m) / d = p - (s * m) / d
        let numerator = b.mul(&name("numerator"), u.scalar("step_size"), m)?;
        let delta = b.div(&name("delta"), numerator, denom)?;
        let param = b.sub(&name("next"), param, delta)?;
        Ok(std::iter::once(param).chain(new_state).collect())
    }

    fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    fn schedule_mut(&mut self) -> &mut Schedule {
        &mut self.schedule
    }
}

//! Random graphs for property tests: every op and dropout variant (and masks of some dropouts),
//! random shapes (scalars and zero-size dimensions included), broadcasting, attributes and
//! constants holding NaN, -0 and infinities. Graphs are built only through `Graph::add`, so each one is well typed; an op
//! whose random operands do not fit is retried with new ones or skipped.
//!
//! Randomness comes from `philox4x32_10`, so the same seed gives the same graph everywhere.

#![allow(dead_code)]

pub mod cli;
pub mod compare;
pub mod differential;
pub mod fixtures;
pub mod gradcheck;
pub mod training;

use dropjit::graph::{
    BatchNorm, BinaryOp, Conv, Dropout, DropoutKind, Embedding, LayerNorm, Pool, PoolKind,
    ReduceOp, Running, Stat, UnaryOp,
};
use dropjit::rng::philox4x32_10;
use dropjit::{DType, Graph, NodeId, Op, Shape, Tensor, TensorType};

/// A small deterministic random source: Philox4x32-10 over an incrementing counter, after
/// the words of a given input, if any (a fuzzer's bytes, which then steer every choice).
pub struct Rng {
    key: [u32; 2],
    counter: u64,
    words: Vec<u32>,
    /// Words still to be given out before the Philox stream, the last one first.
    given: Vec<u32>,
}

impl Rng {
    /// A source keyed by `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng {
            key: [seed as u32, (seed >> 32) as u32],
            counter: 0,
            words: Vec::new(),
            given: Vec::new(),
        }
    }

    /// A source that gives out `bytes` as little-endian words (a last partial word padded
    /// with zeros), then the Philox stream keyed by an FNV-1a hash of `bytes`: a fuzzer's
    /// input decides the choices it reaches, and an input of any length yields a graph.
    pub fn from_bytes(bytes: &[u8]) -> Rng {
        let mut rng = Rng::new(fnv1a(bytes));
        rng.given = (bytes.chunks(4).rev())
            .map(|c| {
                let mut word = [0; 4];
                word[..c.len()].copy_from_slice(c);
                u32::from_le_bytes(word)
            })
            .collect();
        rng
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        if let Some(word) = self.given.pop() {
            return word;
        }
        if self.words.is_empty() {
            let c = self.counter;
            self.counter += 1;
            self.words = philox4x32_10([c as u32, (c >> 32) as u32, 0, 0], self.key).to_vec();
        }
        self.words.pop().expect("refilled above")
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((u64::from(self.next_u32()) * n as u64) >> 32) as usize
    }

    /// True with probability `percent / 100`.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One of `items`.
    pub fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }

    /// A random permutation of `0..n`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut perm: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            perm.swap(i, self.below(i + 1));
        }
        perm
    }
}

/// What the generator can add; every op of the IR appears.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Leaf,
    Unary(UnaryOp),
    Binary(BinaryOp),
    MatMul,
    Linear,
    Conv,
    Pool,
    Reshape,
    Transpose,
    Reduce(ReduceOp),
    Softmax,
    LogSoftmax,
    CrossEntropy,
    Dropout(DropoutKind),
    BatchNorm,
    LayerNorm,
    Embedding,
    Where,
}

fn kinds() -> Vec<Kind> {
    let mut kinds = vec![
        Kind::Leaf,
        Kind::MatMul,
        Kind::Linear,
        Kind::Conv,
        Kind::Pool,
        Kind::Reshape,
        Kind::Transpose,
    ];
    kinds.extend(UnaryOp::ALL.map(Kind::Unary));
    kinds.extend(BinaryOp::ALL.map(Kind::Binary));
    kinds.extend(ReduceOp::ALL.map(Kind::Reduce));
    kinds.extend([Kind::Softmax, Kind::LogSoftmax, Kind::CrossEntropy]);
    kinds.extend(DropoutKind::ALL.map(Kind::Dropout));
    // Dropout is the headline op: weight the family up.
    kinds.extend(DropoutKind::ALL.map(Kind::Dropout));
    // Nine pools share one kind: weight it up so that each appears.
    kinds.extend([Kind::Pool, Kind::Pool]);
    kinds.push(Kind::BatchNorm);
    kinds.push(Kind::LayerNorm);
    kinds.push(Kind::Embedding);
    kinds.push(Kind::Where);
    kinds
}

/// `source` parsed, or a panic with the error and the text.
pub fn parse(source: &str) -> Graph {
    dropjit::text::parse(source).unwrap_or_else(|e| panic!("{e}\n{source}"))
}

/// The 64-bit FNV-1a hash of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    (bytes.iter()).fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A random well-typed, verifiable graph with at least one output.
pub fn random_graph(seed: u64) -> Graph {
    graph_from(format!("random_{seed}"), Rng::new(seed))
}

/// The graph the choices of `bytes` make (see [`Rng::from_bytes`]): well typed and
/// verifiable like every random graph, for a fuzzer to steer.
pub fn graph_from_bytes(bytes: &[u8]) -> Graph {
    graph_from("fuzz".to_string(), Rng::from_bytes(bytes))
}

/// The graph named `name` whose every choice is drawn from `rng`.
fn graph_from(name: String, rng: Rng) -> Graph {
    let mut b = Builder {
        graph: Graph::new(name),
        rng,
        names: 0,
        stream: 0,
    };
    let kinds = kinds();
    let steps = 3 + b.rng.below(20);
    for _ in 0..steps {
        let kind = b.rng.pick(&kinds);
        for _attempt in 0..8 {
            if b.try_add(kind).is_some() {
                break;
            }
        }
    }
    let ids: Vec<NodeId> = b.graph.node_ids().collect();
    if ids.is_empty() {
        b.leaf(TensorType::f32([2]));
    }
    let ids: Vec<NodeId> = b.graph.node_ids().collect();
    for i in 0..1 + b.rng.below(3) {
        let name = b
            .rng
            .pick(&[format!("out{i}"), format!("y_{i}"), format!("head.{i}")]);
        let node = b.rng.pick(&ids);
        b.graph
            .add_output(name, node)
            .expect("output names are distinct by index");
    }
    b.graph
}

struct Builder {
    graph: Graph,
    rng: Rng,
    names: usize,
    stream: u32,
}

impl Builder {
    /// A fresh value name in one of the spellings the text form allows.
    fn name(&mut self) -> String {
        let n = self.names;
        self.names += 1;
        self.rng.pick(&[
            format!("v{n}"),
            format!("layer{n}.out"),
            format!("_{n}"),
            format!("{n}"),
        ])
    }

    fn add(&mut self, op: Op, operands: &[NodeId]) -> Option<NodeId> {
        let name = self.name();
        self.graph.add(name, op, operands).ok()
    }

    fn dim(&mut self) -> usize {
        if self.rng.chance(6) {
            0
        } else {
            1 + self.rng.below(5)
        }
    }

    fn shape(&mut self, rank: usize) -> Shape {
        Shape((0..rank).map(|_| self.dim()).collect())
    }

    /// An input, parameter or (if small) constant of type `ty`.
    fn leaf(&mut self, ty: TensorType) -> NodeId {
        let choice = self.rng.below(3);
        let op = if choice == 0 && ty.shape.numel() <= 12 {
            Op::Constant(self.constant(&ty))
        } else if choice == 1 && ty.dtype == DType::F32 {
            Op::Parameter(ty)
        } else {
            Op::Input(ty)
        };
        self.add(op, &[]).expect("a fresh leaf always fits")
    }

    fn constant(&mut self, ty: &TensorType) -> Tensor {
        let n = ty.shape.numel();
        match ty.dtype {
            DType::F32 => {
                let special = [
                    f32::NAN,
                    -0.0,
                    0.0,
                    f32::INFINITY,
                    f32::NEG_INFINITY,
                    0.1,
                    1e-40,
                ];
                let values = (0..n)
                    .map(|_| {
                        if self.rng.chance(40) {
                            self.rng.pick(&special)
                        } else {
                            let x = f32::from_bits(self.rng.next_u32());
                            // NaN payloads do not survive printing; keep the canonical NaN.
                            if x.is_nan() { f32::NAN } else { x }
                        }
                    })
                    .collect();
                Tensor::from_f32(ty.shape.clone(), values).expect("length is numel")
            }
            DType::I32 => {
                let values = (0..n).map(|_| self.rng.next_u32() as i32 % 7).collect();
                Tensor::from_i32(ty.shape.clone(), values).expect("length is numel")
            }
            DType::Bool => {
                let values = (0..n).map(|_| self.rng.chance(50)).collect();
                Tensor::from_bool(ty.shape.clone(), values).expect("length is numel")
            }
        }
    }

    /// An existing node of `dtype` whose rank is in `ranks`, or a new leaf of one.
    fn operand(&mut self, dtype: DType, ranks: &[usize]) -> NodeId {
        let fits: Vec<NodeId> = self
            .graph
            .node_ids()
            .filter(|&id| {
                let ty = &self.graph[id].ty;
                ty.dtype == dtype && ranks.contains(&ty.shape.rank())
            })
            .collect();
        if !fits.is_empty() && self.rng.chance(70) {
            return self.rng.pick(&fits);
        }
        let rank = self.rng.pick(ranks);
        let shape = self.shape(rank);
        self.leaf(TensorType::new(dtype, shape))
    }

    fn f32_operand(&mut self) -> NodeId {
        self.operand(DType::F32, &[0, 1, 2, 3, 4])
    }

    /// A shape that broadcasts with `dims`: leading dimensions dropped, some set to 1.
    fn broadcast_partner(&mut self, dims: &[usize]) -> Shape {
        let drop = self.rng.below(dims.len() + 1);
        let kept = dims[drop..]
            .iter()
            .map(|&d| if self.rng.chance(30) { 1 } else { d });
        Shape(kept.collect())
    }

    fn ty(&self, id: NodeId) -> TensorType {
        self.graph[id].ty.clone()
    }

    fn try_add(&mut self, kind: Kind) -> Option<NodeId> {
        match kind {
            Kind::Leaf => {
                let dtype = if self.rng.chance(20) {
                    DType::I32
                } else {
                    DType::F32
                };
                let rank = self.rng.below(4);
                let shape = self.shape(rank);
                Some(self.leaf(TensorType::new(dtype, shape)))
            }
            Kind::Unary(op) => {
                let x = self.f32_operand();
                self.add(Op::Unary(op), &[x])
            }
            Kind::Binary(op) => {
                let a = self.f32_operand();
                let partner = self.broadcast_partner(self.ty(a).shape.dims());
                let b = if self.rng.chance(20) {
                    a
                } else {
                    self.leaf(TensorType::f32(partner))
                };
                let operands = if self.rng.chance(50) { [a, b] } else { [b, a] };
                self.add(Op::Binary(op), &operands)
            }
            Kind::MatMul => {
                // Either operand may be read transposed (a flag), and the right one may be an
                // explicit transpose of its last two dimensions, which fold_transpose folds.
                let a = self.operand(DType::F32, &[2, 3, 4]);
                let dims = self.ty(a).shape.0;
                let rank = dims.len();
                let transpose_a = self.rng.chance(25);
                let k = dims[rank - if transpose_a { 2 } else { 1 }];
                let mut rhs = self.broadcast_partner(&dims[..rank - 2]).0;
                let (n, transpose_b) = (self.dim(), self.rng.chance(25));
                let explicit = self.rng.chance(30);
                // The leaf's layout: [k, n], or [n, k] if read transposed (by flag or node).
                rhs.extend(if transpose_b != explicit {
                    [n, k]
                } else {
                    [k, n]
                });
                let mut b = self.leaf(TensorType::f32(rhs));
                if explicit {
                    let mut perm: Vec<usize> = (0..self.ty(b).shape.rank()).collect();
                    let r = perm.len();
                    perm.swap(r - 2, r - 1);
                    b = self.add(Op::Transpose { perm }, &[b])?;
                }
                let op = Op::MatMul {
                    transpose_a,
                    transpose_b,
                };
                self.add(op, &[a, b])
            }
            Kind::Linear => {
                let x = self.operand(DType::F32, &[1, 2, 3]);
                let features = *self.ty(x).shape.dims().last().expect("rank >= 1");
                let out = 1 + self.rng.below(4);
                let w = self.leaf(TensorType::f32([out, features]));
                if self.rng.chance(50) {
                    let bias = self.leaf(TensorType::f32([out]));
                    self.add(Op::Linear { bias: true }, &[x, w, bias])
                } else {
                    self.add(Op::Linear { bias: false }, &[x, w])
                }
            }
            Kind::Conv => {
                let x = self.operand(DType::F32, &[2, 3, 4, 5]);
                let dims = self.ty(x).shape.dims().to_vec();
                // Batched (N, C, ...) when there is room for a spatial dimension after (N, C),
                // and always at rank 5 (three spatial dimensions at most).
                let batched = dims.len() == 5 || (dims.len() >= 3 && self.rng.chance(70));
                let channel = usize::from(batched);
                let spatial = dims.len() - channel - 1;
                let channels = dims[channel];
                let groups = if channels > 1 && self.rng.chance(30) {
                    channels
                } else {
                    1
                };
                let out = groups * (1 + self.rng.below(2));
                let mut conv = Conv::new(spatial, self.rng.chance(50));
                conv.groups = groups;
                let mut w = vec![out, channels / groups];
                for i in 0..spatial {
                    let size = dims[channel + 1 + i];
                    conv.padding[i] = self.rng.below(2);
                    conv.padding_end[i] = self.rng.below(2);
                    conv.stride[i] = 1 + self.rng.below(2);
                    let room = size + conv.padding[i] + conv.padding_end[i];
                    conv.dilation[i] = if room >= 3 && self.rng.chance(30) {
                        2
                    } else {
                        1
                    };
                    // The dilated kernel fits the padded input: d * (k - 1) + 1 <= room.
                    let most = ((room.max(1) - 1) / conv.dilation[i] + 1).min(3);
                    w.push(1 + self.rng.below(most.max(1)));
                }
                let w = self.leaf(TensorType::f32(w));
                if conv.bias {
                    let bias = self.leaf(TensorType::f32([out]));
                    self.add(Op::Conv(conv), &[x, w, bias])
                } else {
                    self.add(Op::Conv(conv), &[x, w])
                }
            }
            Kind::Pool => {
                let x = self.operand(DType::F32, &[2, 3, 4, 5]);
                let dims = self.ty(x).shape.dims().to_vec();
                let batched = dims.len() == 5 || (dims.len() >= 3 && self.rng.chance(70));
                let spatial = dims.len() - usize::from(batched) - 1;
                let size = &dims[dims.len() - spatial..];
                if self.rng.chance(25) {
                    let output = (size.iter())
                        .map(|&l| if l == 0 { 0 } else { 1 + self.rng.below(l + 1) })
                        .collect();
                    return self.add(Op::AdaptiveAvgPool { output }, &[x]);
                }
                let kind = if self.rng.chance(50) {
                    PoolKind::Max
                } else {
                    PoolKind::Avg
                };
                let kernel: Vec<usize> = (0..spatial).map(|_| 1 + self.rng.below(3)).collect();
                let mut pool = Pool::new(kind, &kernel);
                for (i, &k) in kernel.iter().enumerate() {
                    pool.stride[i] = 1 + self.rng.below(3);
                    pool.padding[i] = self.rng.below(k / 2 + 1);
                    if kind == PoolKind::Max && self.rng.chance(30) {
                        pool.dilation[i] = 2;
                    }
                }
                pool.ceil_mode = self.rng.chance(40);
                pool.count_include_pad = kind == PoolKind::Max || self.rng.chance(60);
                // A window past the padded input is refused by inference: no node then.
                self.add(Op::Pool(pool), &[x])
            }
            Kind::Reshape => {
                let dtype = if self.rng.chance(20) {
                    DType::I32
                } else {
                    DType::F32
                };
                let x = self.operand(dtype, &[0, 1, 2, 3]);
                let shape = self.reshape_target(self.ty(x).shape.dims());
                self.add(Op::Reshape { shape }, &[x])
            }
            Kind::Transpose => {
                let dtype = if self.rng.chance(20) {
                    DType::I32
                } else {
                    DType::F32
                };
                let x = self.operand(dtype, &[0, 1, 2, 3, 4]);
                let perm = self.rng.permutation(self.ty(x).shape.rank());
                self.add(Op::Transpose { perm }, &[x])
            }
            Kind::Reduce(op) => {
                let x = self.f32_operand();
                let rank = self.ty(x).shape.rank();
                let mut axes = Vec::new();
                if self.rng.chance(75) {
                    for axis in self.rng.permutation(rank.max(1)) {
                        if self.rng.chance(50) {
                            let negative = self.rng.chance(50);
                            axes.push(axis as i64 - if negative { rank.max(1) as i64 } else { 0 });
                        }
                    }
                }
                let keepdim = self.rng.chance(40);
                self.add(Op::Reduce { op, axes, keepdim }, &[x])
            }
            Kind::Softmax | Kind::LogSoftmax => {
                let x = self.f32_operand();
                let span = self.ty(x).shape.rank().max(1) as i64;
                let axis = self.rng.below(2 * span as usize) as i64 - span;
                let op = if matches!(kind, Kind::Softmax) {
                    Op::Softmax { axis }
                } else {
                    Op::LogSoftmax { axis }
                };
                self.add(op, &[x])
            }
            Kind::CrossEntropy => {
                let logits = self.operand(DType::F32, &[1, 2]);
                let dims = self.ty(logits).shape.0;
                let targets = Shape(dims[..dims.len() - 1].to_vec());
                let targets = self.leaf(TensorType::i32(targets));
                self.add(Op::CrossEntropy, &[logits, targets])
            }
            Kind::Dropout(kind) => self.dropout(kind),
            Kind::BatchNorm => self.batch_norm(),
            Kind::LayerNorm => self.layer_norm(),
            Kind::Where => {
                // A causal mask over the last two dimensions (a tril), or a bool leaf of the
                // value's shape, picking between the value and a broadcast scalar.
                let a = self.f32_operand();
                let dims = self.ty(a).shape.dims().to_vec();
                let cond = if dims.len() >= 2 && self.rng.chance(60) {
                    let shape = Shape(dims[dims.len() - 2..].to_vec());
                    let diagonal = self.rng.below(3) as i64 - 1;
                    self.add(Op::Tril { shape, diagonal }, &[])?
                } else {
                    self.leaf(TensorType::bool(Shape(dims)))
                };
                let b = self.leaf(TensorType::f32(Shape(Vec::new())));
                let (a, b) = if self.rng.chance(50) { (a, b) } else { (b, a) };
                self.add(Op::Where, &[cond, a, b])
            }
            Kind::Embedding => {
                // Fresh i32 indices of rank 0 to 2 (init draws them inside the table) into a
                // table leaf, with a padding row or not.
                let rank = self.rng.below(3);
                let shape: Vec<usize> = (0..rank).map(|_| 1 + self.rng.below(4)).collect();
                let indices = self.leaf(TensorType::i32(Shape(shape)));
                let (num, dim) = (1 + self.rng.below(6), 1 + self.rng.below(5));
                let table = self.leaf(TensorType::f32([num, dim]));
                let padding_idx = self
                    .rng
                    .chance(30)
                    .then(|| self.rng.below(2 * num) as i64 - num as i64);
                self.add(Op::Embedding(Embedding { padding_idx }), &[indices, table])
            }
        }
    }

    /// A layer norm over the last one or two dimensions, with a weight and a bias, a weight
    /// alone or neither, eps default, larger or zero (a constant row is then NaN on both
    /// engines).
    fn layer_norm(&mut self) -> Option<NodeId> {
        let x = self.operand(DType::F32, &[1, 2, 3, 4]);
        let dims = self.ty(x).shape.dims().to_vec();
        let k = 1 + self.rng.below(dims.len().min(2));
        let mut ln = LayerNorm::new(&dims[dims.len() - k..]);
        ln.eps = self.rng.pick(&[1e-5, 1e-3, 0.0]);
        ln.weight = self.rng.chance(70);
        ln.bias = ln.weight && self.rng.chance(70);
        let mut operands = vec![x];
        for _ in 0..usize::from(ln.weight) + usize::from(ln.bias) {
            let ty = TensorType::f32(Shape(ln.normalized_shape.clone()));
            operands.push(self.leaf(ty));
        }
        self.add(Op::LayerNorm(ln), &operands)
    }

    /// A batch norm (affine or not, eps default or not) or one of its running statistics,
    /// over an input with more than one value per channel (one is an error in train mode,
    /// which the compiler reports when compiling).
    fn batch_norm(&mut self) -> Option<NodeId> {
        let x = self.operand(DType::F32, &[2, 3, 4, 5]);
        let dims = self.ty(x).shape.dims().to_vec();
        let per_channel: usize = dims[0] * dims[2..].iter().product::<usize>();
        if per_channel == 1 {
            return None;
        }
        let c = dims[1];
        let mean = self.leaf(TensorType::f32([c]));
        let var = self.leaf(TensorType::f32([c]));
        match self.rng.below(4) {
            0 => {
                let momentum = self.rng.pick(&[0.1, 0.5, 1.0]);
                self.add(
                    Op::BatchNormRunning(Running {
                        stat: Stat::Mean,
                        momentum,
                    }),
                    &[x, mean],
                )
            }
            1 => {
                let momentum = self.rng.pick(&[0.1, 0.0, 0.25]);
                self.add(
                    Op::BatchNormRunning(Running {
                        stat: Stat::Var,
                        momentum,
                    }),
                    &[x, var],
                )
            }
            _ => {
                let eps = self.rng.pick(&[1e-5, 1e-3, 0.0]);
                let affine = self.rng.chance(70);
                let mut operands = vec![x, mean, var];
                if affine {
                    operands.push(self.leaf(TensorType::f32([c])));
                    operands.push(self.leaf(TensorType::f32([c])));
                }
                let running_stats = self.rng.chance(20);
                let bn = BatchNorm {
                    eps,
                    affine,
                    running_stats,
                };
                self.add(Op::BatchNorm(bn), &operands)
            }
        }
    }

    fn reshape_target(&mut self, dims: &[usize]) -> Vec<i64> {
        let numel: usize = dims.iter().product();
        let mut target: Vec<i64> = match self.rng.below(4) {
            0 => vec![numel as i64],
            1 => dims.iter().rev().map(|&d| d as i64).collect(),
            2 => dims.iter().flat_map(|&d| [1, d as i64]).collect(),
            _ => {
                let split = (2..=numel).find(|f| numel.is_multiple_of(*f)).unwrap_or(1);
                vec![split as i64, (numel / split.max(1)) as i64]
            }
        };
        if !target.is_empty() && !target.contains(&0) && self.rng.chance(40) {
            let i = self.rng.below(target.len());
            target[i] = -1;
        }
        target
    }

    fn dropout(&mut self, kind: DropoutKind) -> Option<NodeId> {
        let ranks: &[usize] = match kind {
            DropoutKind::Dropout | DropoutKind::AlphaDropout => &[0, 1, 2, 3, 4],
            DropoutKind::Dropout1d => &[2, 3],
            DropoutKind::Dropout2d => &[3, 4],
            DropoutKind::Dropout3d => &[4, 5],
            DropoutKind::FeatureAlphaDropout => &[2, 3, 4],
        };
        let x = self.operand(DType::F32, ranks);
        let rank = self.ty(x).shape.rank();
        let random_p = f64::from(self.rng.next_u32()) / 4294967296.0;
        let p = self.rng.pick(&[0.0, 1.0, 0.5, 0.1, 1e-7, 0.999, random_p]);
        self.stream += 1 + self.rng.below(3) as u32;
        let mut dropout = Dropout::new(kind, p, self.stream);
        dropout.inplace = self.rng.chance(20);
        if kind.is_elementwise() && self.rng.chance(40) {
            dropout.broadcast_dims = (0..rank).filter(|_| self.rng.chance(50)).collect();
        }
        let id = self.add(Op::Dropout(dropout.clone()), &[x])?;
        // For about a third of the dropouts, their mask too (never in place: only the dropout
        // may be). Chosen by stream and named after it, so no draw of `rng` is spent and the
        // graphs of every seed stay what they were before masks existed, masks added.
        if self.stream.is_multiple_of(3) {
            dropout.inplace = false;
            let name = format!("mask{}", self.stream);
            self.graph
                .add(name, Op::DropoutMask(dropout), &[x])
                .expect("a mask fits where its dropout does");
        }
        Some(id)
    }
}

/// A copy of `graph` with every dropout out of place (`inplace = false`): for tests that
/// compare values, which in-place dropouts do not change, on graphs whose in-place requests
/// may conflict with later readers (a compile error for the JIT).
/// A copy of `graph` in which every in-place request the verifier rejects (invariant 9) is
/// taken back and every other one kept: a valid program that still runs in place where it
/// may.
pub fn without_conflicts(graph: &Graph) -> Graph {
    let mut graph = graph.clone();
    while let Err(error) = dropjit::graph::verify::verify(&graph) {
        let mut changed = false;
        for error in error.flatten() {
            if let dropjit::Error::InplaceConflict { node, .. } = error {
                let id = graph
                    .lookup(node)
                    .expect("the verifier names a node of the graph");
                if let Op::Dropout(dropout) = graph.op_mut(id).unwrap() {
                    changed |= std::mem::replace(&mut dropout.inplace, false);
                }
            }
        }
        assert!(
            changed,
            "only in-place conflicts make a random graph invalid: {error}"
        );
    }
    graph
}

/// True if `error` reports in-place conflicts only (verifier invariant 9, one per buffer):
/// the program's own request, which [`without_inplace`] takes back.
pub fn is_inplace_conflict(error: &dropjit::Error) -> bool {
    (error.flatten().iter()).all(|e| matches!(e, dropjit::Error::InplaceConflict { .. }))
}

pub fn without_inplace(graph: &Graph) -> Graph {
    let mut graph = graph.clone();
    let ids: Vec<NodeId> = graph.node_ids().collect();
    for id in ids {
        if let Op::Dropout(dropout) = graph.op_mut(id).unwrap() {
            dropout.inplace = false;
        }
    }
    graph
}

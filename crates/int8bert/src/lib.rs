//! A BERT sentence encoder's forward pass with 8-bit integer weights: the
//! `int8` precision of frontdesk's semantic layer (all-MiniLM-L6-v2), and
//! what its `auto` picks on a CPU with AVX512-VNNI.
//!
//! rust-bert computes in f32 or bf16 through libtorch and has no int8
//! path; a message's forward pass there is bound by the matrix products,
//! which int8 dot products (VNNI: 64 byte products an instruction) do
//! several times faster. The scheme keeps the embeddings within a cosine
//! of about 0.999 of f32's:
//! - every weight matrix is quantized once at load, per output channel
//!   (symmetric, scale = max |w| / 127);
//! - every activation row (one token) is quantized when it is used,
//!   asymmetric over its own range (0..=255 with a zero point), so a row
//!   of GELU outputs, nearly all positive, keeps all eight bits;
//! - everything else (embeddings, attention, layer norms, GELU, pooling)
//!   stays f32, and the word-piece table is kept in bf16 (half the memory,
//!   three significant digits: far finer than the int8 steps after it).
//!
//! Input is word-piece ids (frontdesk tokenizes with rust-bert's own
//! tokenizer, so both paths see the same input); output is the mean-pooled,
//! unit-length embedding, as sentence-transformers computes it.
//!
//! Three kernels compute the integer products, with the same integers
//! (integer sums do not depend on their order; unit tests compare them on
//! random matrices): `vnni` (AVX512-VNNI `vpdpbusd`, 64 byte products an
//! instruction), `avx2` (for the many CPUs without VNNI: `vpmaddubsw`, 32
//! byte products an instruction, summed in i32 by `vpmaddwd`; it adds two
//! u8 × i8 products in i16, which saturates when |w0| + |w1| > 128, so the
//! few weights of such pairs, about 2% of them, are packed apart and added
//! after the dense products) and `portable` (plain Rust). `Kernel::best`
//! picks the fastest this CPU has; `Bert::load_with` takes one to force.
//!
//! A crate of its own so that it is compiled optimized even in the dev
//! profile (frontdesk's Cargo.toml): unoptimized, a sentence takes a
//! quarter of a second. The `unsafe` here is the SIMD intrinsics, each use
//! guarded by a CPU feature check.

use std::collections::HashMap;
use std::path::Path;

/// Whether this CPU has the int8 dot products (AVX512-VNNI) the fast
/// kernel uses; without them a portable kernel computes the same integers,
/// slowly.
pub fn cpu_has_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    // Every feature `forward_avx512` enables: a virtual machine may hide
    // any one of them.
    return std::arch::is_x86_feature_detected!("avx512vnni")
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether this CPU has what the `avx2` kernel uses (AVX2 and FMA: Intel
/// since Haswell, AMD since Zen 1).
pub fn cpu_has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Which code computes the integer products (and which instruction set
/// the f32 parts around them are compiled for). All give the same
/// integers; they differ in speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// AVX512-VNNI (Intel Cascade Lake and later, AMD Zen 4 and later).
    Vnni,
    /// AVX2 and FMA (nearly every x86-64 CPU since 2013-2017).
    Avx2,
    /// Plain Rust, any CPU.
    Portable,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub fn best() -> Kernel {
        if cpu_has_vnni() {
            Kernel::Vnni
        } else if cpu_has_avx2() {
            Kernel::Avx2
        } else {
            Kernel::Portable
        }
    }

    /// Whether this CPU runs the kernel.
    pub fn supported(self) -> bool {
        match self {
            Kernel::Vnni => cpu_has_vnni(),
            Kernel::Avx2 => cpu_has_avx2(),
            Kernel::Portable => true,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kernel::Vnni => "vnni",
            Kernel::Avx2 => "avx2",
            Kernel::Portable => "portable",
        }
    }
}

impl std::fmt::Display for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Kernel {
    type Err = String;
    fn from_str(s: &str) -> Result<Kernel, String> {
        match s {
            "vnni" => Ok(Kernel::Vnni),
            "avx2" => Ok(Kernel::Avx2),
            "portable" => Ok(Kernel::Portable),
            other => Err(format!(
                "int8 kernel {other:?} is not one of \"vnni\", \"avx2\", \"portable\""
            )),
        }
    }
}

/// The shape of a BERT encoder, from its `config.json`.
#[derive(Debug, Clone, Copy)]
struct Shape {
    hidden: usize,
    heads: usize,
    ff: usize,
    layers: usize,
    max_pos: usize,
    vocab: usize,
    eps: f32,
}

struct Norm {
    gain: Vec<f32>,
    bias: Vec<f32>,
}

/// An int8 weight matrix, `n` outputs by `k` inputs, packed for the dot
/// product kernel: blocks of 16 outputs (8 for `avx2`), within them groups
/// of 4 inputs, so one 64-byte load holds 4 inputs of 16 outputs (what
/// `vpdpbusd` multiplies against one broadcast group of 4 activation
/// bytes; for `avx2` one 32-byte load, 4 inputs of 8 outputs).
struct Linear {
    n: usize,
    k: usize,
    /// Outputs per block of `packed`: 16, or 8 for the `avx2` kernel.
    block: usize,
    packed: Vec<i8>,
    /// The `avx2` kernel's sparse part (empty for the others): weights
    /// taken out of `packed` so that no two neighbours there, which
    /// `vpmaddubsw` adds in i16, have |w0| + |w1| above 128 (255 × 128 =
    /// 32,640 fits in i16, 255 × 129 does not); they are added back after
    /// the dense products. Sorted by output, then input.
    fixes: Vec<Fix>,
    /// Where each output's fixes start in `fixes` (n + 1 entries).
    fix_start: Vec<u32>,
    /// Per output: the weight scale, and the sum of its int8 weights (to
    /// take the activations' zero point back out).
    scale: Vec<f32>,
    sum: Vec<i32>,
    bias: Vec<f32>,
}

struct Layer {
    /// Query, key and value in one matrix (3 × hidden outputs).
    qkv: Linear,
    attn_out: Linear,
    attn_norm: Norm,
    up: Linear,
    down: Linear,
    out_norm: Norm,
}

/// all-MiniLM-L6-v2 (or any BERT of the same kind) with int8 weights.
pub struct Bert {
    shape: Shape,
    /// Word-piece vectors as bf16 bits (vocab × hidden).
    words: Vec<u16>,
    positions: Vec<f32>,
    token_type: Vec<f32>,
    embed_norm: Norm,
    layers: Vec<Layer>,
    kernel: Kernel,
}

impl std::fmt::Debug for Bert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bert({:?}, kernel {})", self.shape, self.kernel)
    }
}

impl Bert {
    /// Reads `config.json` and `model.safetensors` from `dir` (a Hugging
    /// Face BERT in f32), for the fastest kernel this CPU has. Errors name
    /// the file and what is wrong with it.
    pub fn load(dir: &Path) -> Result<Bert, String> {
        Bert::load_with(dir, Kernel::best())
    }

    /// `load` with the kernel named; an error if this CPU cannot run it.
    pub fn load_with(dir: &Path, kernel: Kernel) -> Result<Bert, String> {
        if !kernel.supported() {
            return Err(format!(
                "the int8 kernel \"{kernel}\" needs CPU features this CPU does not have (\"{}\" is the best it runs)",
                Kernel::best()
            ));
        }
        let config = read_json(&dir.join("config.json"))?;
        let num = |key: &str| -> Result<usize, String> {
            config
                .get(key)
                .and_then(|v| v.as_u64())
                .map(|v| v as usize)
                .ok_or_else(|| format!("config.json: {key} is missing or not a number"))
        };
        let shape = Shape {
            hidden: num("hidden_size")?,
            heads: num("num_attention_heads")?,
            ff: num("intermediate_size")?,
            layers: num("num_hidden_layers")?,
            max_pos: num("max_position_embeddings")?,
            vocab: num("vocab_size")?,
            eps: config
                .get("layer_norm_eps")
                .and_then(|v| v.as_f64())
                .unwrap_or(1e-12) as f32,
        };
        if shape.vocab == 0 || shape.max_pos == 0 || shape.layers == 0 {
            return Err("config.json: vocab_size, max_position_embeddings and num_hidden_layers must be above 0".into());
        }
        let act = config.get("hidden_act").and_then(|v| v.as_str());
        if act != Some("gelu") {
            return Err(format!("config.json: hidden_act {act:?} is not \"gelu\""));
        }
        if shape.heads == 0
            || ![32, 64].contains(&(shape.hidden / shape.heads))
            || !shape.hidden.is_multiple_of(shape.heads)
        {
            return Err(
                "config.json: hidden_size / num_attention_heads is not 32 or 64, the head widths the int8 pass has; use precision \"f32\"".into(),
            );
        }
        for (what, v) in [
            ("hidden_size", shape.hidden),
            ("intermediate_size", shape.ff),
        ] {
            if v == 0 || !v.is_multiple_of(64) {
                return Err(format!(
                    "config.json: {what} {v} is not a multiple of 64, which the int8 kernel needs; use precision \"f32\""
                ));
            }
        }
        let mut t = Tensors::read(&dir.join("model.safetensors"))?;
        let h = shape.hidden;
        let words = t.take("embeddings.word_embeddings.weight", &[shape.vocab, h])?;
        let words = words.iter().map(|&x| bf16_bits(x)).collect();
        let positions = t.take("embeddings.position_embeddings.weight", &[shape.max_pos, h])?;
        let token_type = t.take("embeddings.token_type_embeddings.weight", &[0, h])?;
        let token_type = token_type
            .get(..h)
            .ok_or("model.safetensors: token_type_embeddings is empty")?
            .to_vec();
        let embed_norm = t.norm("embeddings.LayerNorm", h)?;
        // No capacity from the config: a huge number there must be an
        // error (a missing tensor), not an allocation that aborts.
        let mut layers = Vec::new();
        for i in 0..shape.layers {
            let p = format!("encoder.layer.{i}");
            let mut qkv_w = Vec::new();
            let mut qkv_b = Vec::new();
            for part in ["query", "key", "value"] {
                qkv_w.extend(t.take(&format!("{p}.attention.self.{part}.weight"), &[h, h])?);
                qkv_b.extend(t.take(&format!("{p}.attention.self.{part}.bias"), &[h])?);
            }
            layers.push(Layer {
                qkv: Linear::new(&qkv_w, qkv_b, 3 * h, h, kernel),
                attn_out: t.linear(&format!("{p}.attention.output.dense"), h, h, kernel)?,
                attn_norm: t.norm(&format!("{p}.attention.output.LayerNorm"), h)?,
                up: t.linear(&format!("{p}.intermediate.dense"), shape.ff, h, kernel)?,
                down: t.linear(&format!("{p}.output.dense"), h, shape.ff, kernel)?,
                out_norm: t.norm(&format!("{p}.output.LayerNorm"), h)?,
            });
        }
        Ok(Bert {
            shape,
            words,
            positions,
            token_type,
            embed_norm,
            layers,
            kernel,
        })
    }

    /// How many word pieces the model has positions for; `embed` reads no
    /// further.
    pub fn max_positions(&self) -> usize {
        self.shape.max_pos
    }

    /// The kernel that computes the integer products.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// The unit-length, mean-pooled embedding of a sentence's word-piece
    /// ids ([CLS] … [SEP]); ids beyond the vocabulary count as its last.
    pub fn embed(&self, ids: &[i64]) -> Vec<f32> {
        let last = self.shape.vocab - 1;
        let ids: Vec<usize> = ids
            .iter()
            .map(|&id| (id.max(0) as usize).min(last))
            .collect();
        // Any kernel gives the same integers.
        #[cfg(target_arch = "x86_64")]
        match self.kernel {
            // SAFETY: `load_with` keeps a kernel only if `supported()`
            // said this CPU has its features.
            Kernel::Vnni => return unsafe { self.forward_avx512(&ids) },
            Kernel::Avx2 => return unsafe { self.forward_avx2(&ids) },
            Kernel::Portable => {}
        }
        self.forward(&ids, Kernel::Portable)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
    unsafe fn forward_avx512(&self, ids: &[usize]) -> Vec<f32> {
        // Everything below is inlined here, so the f32 loops are compiled
        // for AVX-512 too.
        self.forward(ids, Kernel::Vnni)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn forward_avx2(&self, ids: &[usize]) -> Vec<f32> {
        // The f32 loops compiled for AVX2 and FMA (see `forward_avx512`).
        self.forward(ids, Kernel::Avx2)
    }

    #[inline(always)]
    fn forward(&self, ids: &[usize], kernel: Kernel) -> Vec<f32> {
        let s = self.shape;
        let h = s.hidden;
        let t = ids.len().min(s.max_pos);
        if t == 0 {
            return vec![0.0; h];
        }
        let mut x = vec![0f32; t * h];
        for (i, &id) in ids.iter().take(t).enumerate() {
            let row = &mut x[i * h..(i + 1) * h];
            let word = &self.words[id * h..(id + 1) * h];
            let pos = &self.positions[i * h..(i + 1) * h];
            for j in 0..h {
                row[j] = bf16_value(word[j]) + pos[j] + self.token_type[j];
            }
        }
        layer_norm(&mut x, &self.embed_norm, s.eps);
        let mut scratch = Scratch::default();
        let mut ctx = vec![0f32; t * h];
        let mut a = Vec::new();
        let mut qkv = Vec::new();
        let mut up = Vec::new();
        for layer in &self.layers {
            layer.qkv.apply(&x, t, &mut qkv, &mut scratch, kernel);
            if h / s.heads == 32 {
                attention::<32>(&qkv, t, h, &mut ctx, &mut scratch);
            } else {
                attention::<64>(&qkv, t, h, &mut ctx, &mut scratch);
            }
            layer.attn_out.apply(&ctx, t, &mut a, &mut scratch, kernel);
            add(&mut x, &a);
            layer_norm(&mut x, &layer.attn_norm, s.eps);
            layer.up.apply(&x, t, &mut up, &mut scratch, kernel);
            for v in up.iter_mut() {
                *v = gelu(*v);
            }
            layer.down.apply(&up, t, &mut a, &mut scratch, kernel);
            add(&mut x, &a);
            layer_norm(&mut x, &layer.out_norm, s.eps);
        }
        let mut pooled = vec![0f32; h];
        for row in x.chunks_exact(h) {
            add(&mut pooled, row);
        }
        let norm = dot(&pooled, &pooled).sqrt().max(1e-12);
        for v in pooled.iter_mut() {
            *v /= norm;
        }
        pooled
    }
}

/// Buffers reused across the layers of one forward pass.
#[derive(Default)]
struct Scratch {
    quantized: Vec<u8>,
    row_scale: Vec<f32>,
    row_zero: Vec<i32>,
    acc: Vec<i32>,
    scores: Vec<f32>,
    /// One head's keys, transposed (see `attention`).
    keys: Vec<f32>,
}

/// One weight of a `Linear`'s sparse part: `acc[output] += x[input] × weight`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fix {
    input: u32,
    output: u32,
    weight: i32,
}

/// Splits a weight pair that `vpmaddubsw` adds in i16 so that |w0| + |w1|
/// <= 128 (exact against activations up to 255): the smaller weight in
/// magnitude moves out whole (the larger, at most 127, stays). Returns
/// the pair to pack and the weights taken out, by position (0 or 1).
fn split_pair(w0: i8, w1: i8) -> ([i8; 2], Option<(usize, i8)>) {
    if (w0 as i32).abs() + (w1 as i32).abs() <= 128 {
        ([w0, w1], None)
    } else if (w0 as i32).abs() >= (w1 as i32).abs() {
        ([w0, 0], Some((1, w1)))
    } else {
        ([0, w1], Some((0, w0)))
    }
}

impl Linear {
    fn new(w: &[f32], bias: Vec<f32>, n: usize, k: usize, kernel: Kernel) -> Linear {
        // What the kernels' pointer arithmetic relies on (the config checks
        // at load make it so; a panic here is caught as a broken model).
        assert!(n.is_multiple_of(64) && k.is_multiple_of(4) && w.len() == n * k && bias.len() == n);
        let mut scale = vec![0f32; n];
        let mut sum = vec![0i32; n];
        let mut q = vec![0i8; n * k];
        for o in 0..n {
            let row = &w[o * k..(o + 1) * k];
            let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let sc = if max > 0.0 { max / 127.0 } else { 1.0 };
            scale[o] = sc;
            for (j, v) in row.iter().enumerate() {
                let qv = (v / sc).round().clamp(-127.0, 127.0) as i8;
                q[o * k + j] = qv;
                sum[o] += qv as i32;
            }
        }
        let mut fixes = Vec::new();
        if kernel == Kernel::Avx2 {
            for o in 0..n {
                for j in (0..k).step_by(2) {
                    let (pair, out) = split_pair(q[o * k + j], q[o * k + j + 1]);
                    q[o * k + j..o * k + j + 2].copy_from_slice(&pair);
                    if let Some((at, weight)) = out {
                        fixes.push(Fix {
                            input: (j + at) as u32,
                            output: o as u32,
                            weight: weight as i32,
                        });
                    }
                }
            }
            fixes.sort_by_key(|f| (f.output, f.input));
        }
        let mut fix_start = vec![0u32; n + 1];
        for f in &fixes {
            fix_start[f.output as usize + 1] += 1;
        }
        for o in 0..n {
            fix_start[o + 1] += fix_start[o];
        }
        let block = if kernel == Kernel::Avx2 { 8 } else { 16 };
        let mut packed = vec![0i8; n * k];
        let groups = k / 4;
        for b in 0..n / block {
            for g in 0..groups {
                for c in 0..block {
                    for j in 0..4 {
                        packed[((b * groups + g) * block + c) * 4 + j] =
                            q[(b * block + c) * k + g * 4 + j];
                    }
                }
            }
        }
        Linear {
            n,
            k,
            block,
            packed,
            fixes,
            fix_start,
            scale,
            sum,
            bias,
        }
    }

    /// `out` = `x` (t × k) times this matrix, plus its bias (t × n).
    #[inline(always)]
    fn apply(&self, x: &[f32], t: usize, out: &mut Vec<f32>, s: &mut Scratch, kernel: Kernel) {
        let (k, n) = (self.k, self.n);
        s.quantized.resize(t * k, 0);
        s.row_scale.resize(t, 0.0);
        s.row_zero.resize(t, 0);
        for r in 0..t {
            let row = &x[r * k..(r + 1) * k];
            let (lo, hi) = min_max(row);
            let (lo, hi) = (lo.min(0.0), hi.max(0.0));
            let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
            let zero = round_even(-lo / scale);
            let inv = 1.0 / scale;
            for (q, v) in s.quantized[r * k..(r + 1) * k].iter_mut().zip(row) {
                *q = round_even(v * inv + zero).clamp(0.0, 255.0) as u8;
            }
            s.row_scale[r] = scale;
            s.row_zero[r] = zero as i32;
        }
        s.acc.resize(t * n, 0);
        #[cfg(target_arch = "x86_64")]
        match kernel {
            // SAFETY: a `Bert` keeps a kernel only where `supported()` said
            // this CPU has its features (the tests check it too).
            Kernel::Vnni => unsafe { dot_vnni(&s.quantized, t, self, &mut s.acc) },
            Kernel::Avx2 => unsafe { dot_avx2(&s.quantized, t, self, &mut s.acc) },
            Kernel::Portable => dot_portable(&s.quantized, t, self, &mut s.acc),
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = kernel;
            dot_portable(&s.quantized, t, self, &mut s.acc);
        }
        out.resize(t * n, 0.0);
        for r in 0..t {
            let (rs, rz) = (s.row_scale[r], s.row_zero[r]);
            let acc = &s.acc[r * n..(r + 1) * n];
            let o = &mut out[r * n..(r + 1) * n];
            let weights = self.sum.iter().zip(&self.scale).zip(&self.bias);
            for ((o, a), ((sum, scale), bias)) in o.iter_mut().zip(acc).zip(weights) {
                *o = (a - rz * sum) as f32 * (rs * scale) + bias;
            }
        }
    }
}

/// The integer products, one output at a time: the reference the VNNI
/// kernel must equal, and the path on CPUs without it.
fn dot_portable(x: &[u8], t: usize, w: &Linear, acc: &mut [i32]) {
    // Only ever called with the 16-output packing (tests included).
    assert_eq!(w.block, 16);
    let groups = w.k / 4;
    for r in 0..t {
        let xr = &x[r * w.k..(r + 1) * w.k];
        for block in 0..w.n / 16 {
            let mut sums = [0i32; 16];
            for g in 0..groups {
                let wg = &w.packed[(block * groups + g) * 64..(block * groups + g + 1) * 64];
                let xg = &xr[g * 4..g * 4 + 4];
                for c in 0..16 {
                    for j in 0..4 {
                        sums[c] += xg[j] as i32 * wg[c * 4 + j] as i32;
                    }
                }
            }
            acc[r * w.n + block * 16..r * w.n + block * 16 + 16].copy_from_slice(&sums);
        }
    }
}

/// The integer products with `vpdpbusd`: 4 blocks of 16 outputs against up
/// to 4 token rows at a time, 16 accumulators in registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn dot_vnni(x: &[u8], t: usize, w: &Linear, acc: &mut [i32]) {
    // The bounds every pointer below stays within (with `Linear::new`'s).
    assert!(
        x.len() >= t * w.k && acc.len() >= t * w.n && w.packed.len() == w.n * w.k && w.block == 16
    );
    let mut r = 0;
    while r < t {
        match t - r {
            1 => dot_vnni_rows::<1>(x, r, w, acc),
            2 => dot_vnni_rows::<2>(x, r, w, acc),
            3 => dot_vnni_rows::<3>(x, r, w, acc),
            _ => dot_vnni_rows::<4>(x, r, w, acc),
        }
        r += 4;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
unsafe fn dot_vnni_rows<const R: usize>(x: &[u8], r0: usize, w: &Linear, acc: &mut [i32]) {
    use std::arch::x86_64::*;
    let groups = w.k / 4;
    let (k, n) = (w.k, w.n);
    let xp = x.as_ptr().add(r0 * k);
    let wp = w.packed.as_ptr();
    let mut block = 0;
    while block < n / 16 {
        let mut sums = [[_mm512_setzero_si512(); 4]; R];
        let base = [
            wp.add(block * groups * 64),
            wp.add((block + 1) * groups * 64),
            wp.add((block + 2) * groups * 64),
            wp.add((block + 3) * groups * 64),
        ];
        for g in 0..groups {
            let ws = [
                _mm512_loadu_si512(base[0].add(g * 64) as *const _),
                _mm512_loadu_si512(base[1].add(g * 64) as *const _),
                _mm512_loadu_si512(base[2].add(g * 64) as *const _),
                _mm512_loadu_si512(base[3].add(g * 64) as *const _),
            ];
            for (i, row) in sums.iter_mut().enumerate() {
                let four = (xp.add(i * k + g * 4) as *const i32).read_unaligned();
                let xb = _mm512_set1_epi32(four);
                for c in 0..4 {
                    row[c] = _mm512_dpbusd_epi32(row[c], xb, ws[c]);
                }
            }
        }
        for (i, row) in sums.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                let at = acc.as_mut_ptr().add((r0 + i) * n + (block + c) * 16);
                _mm512_storeu_si512(at as *mut _, *v);
            }
        }
        block += 4;
    }
}

/// The integer products with AVX2: per group of 4 inputs, 32 bytes of
/// weights (8 outputs × 4 inputs) against the row's 4 activation bytes,
/// broadcast: `vpmaddubsw` gives x0·w0 + x1·w1 and x2·w2 + x3·w3 in i16
/// (exact: `Linear::new` moved the pairs that could saturate into its
/// sparse `fixes`), `vpmaddwd` by 1 adds the two in i32, one lane per
/// output, so the sums need no reduction at the end. Up to 12 token rows
/// share each weight load (12 accumulators of the 16 registers), so a
/// message of up to 12 word pieces reads each matrix once.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(x: &[u8], t: usize, w: &Linear, acc: &mut [i32]) {
    // The bounds every pointer below stays within (with `Linear::new`'s).
    assert!(
        x.len() >= t * w.k && acc.len() >= t * w.n && w.packed.len() == w.n * w.k && w.block == 8
    );
    let mut r = 0;
    while r < t {
        match t - r {
            1 => dot_avx2_rows::<1>(x, r, w, acc),
            2 => dot_avx2_rows::<2>(x, r, w, acc),
            3 => dot_avx2_rows::<3>(x, r, w, acc),
            4 => dot_avx2_rows::<4>(x, r, w, acc),
            5 => dot_avx2_rows::<5>(x, r, w, acc),
            6 => dot_avx2_rows::<6>(x, r, w, acc),
            7 => dot_avx2_rows::<7>(x, r, w, acc),
            8 => dot_avx2_rows::<8>(x, r, w, acc),
            9 => dot_avx2_rows::<9>(x, r, w, acc),
            10 => dot_avx2_rows::<10>(x, r, w, acc),
            11 => dot_avx2_rows::<11>(x, r, w, acc),
            _ => dot_avx2_rows::<12>(x, r, w, acc),
        }
        r += 12;
    }
    add_fixes(x, t, w, acc);
}

/// Adds the `avx2` kernel's sparse weights (`Linear::fixes`) to `acc`:
/// 8 token rows at a time, the activations transposed so that one fix
/// multiplies its input in 8 rows with one instruction, and each output's
/// few fixes summed in a register before they meet `acc`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_fixes(x: &[u8], t: usize, w: &Linear, acc: &mut [i32]) {
    use std::arch::x86_64::*;
    let (k, n) = (w.k, w.n);
    if w.fixes.is_empty() {
        return;
    }
    // Input j of row i at [j * 8 + i].
    let mut xt = vec![0u8; k * 8];
    let mut r0 = 0;
    while r0 < t {
        let rows = (t - r0).min(8);
        if rows < 8 {
            xt.fill(0);
        }
        for i in 0..rows {
            for (j, v) in x[(r0 + i) * k..(r0 + i + 1) * k].iter().enumerate() {
                xt[j * 8 + i] = *v;
            }
        }
        for o in 0..n {
            let fixes = &w.fixes[w.fix_start[o] as usize..w.fix_start[o + 1] as usize];
            if fixes.is_empty() {
                continue;
            }
            let mut v = _mm256_setzero_si256();
            for f in fixes {
                let eight = &xt[f.input as usize * 8..f.input as usize * 8 + 8];
                let xs = _mm256_cvtepu8_epi32(_mm_loadl_epi64(eight.as_ptr() as *const __m128i));
                // x × w in `vpmaddwd` (one instruction where `vpmulld`
                // is two): each lane's high i16 is 0 in both.
                let wv = _mm256_set1_epi32(f.weight & 0xffff);
                v = _mm256_add_epi32(v, _mm256_madd_epi16(xs, wv));
            }
            let mut lanes = [0i32; 8];
            _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, v);
            for (i, lane) in lanes.iter().take(rows).enumerate() {
                acc[(r0 + i) * n + o] += lane;
            }
        }
        r0 += 8;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn dot_avx2_rows<const R: usize>(x: &[u8], r0: usize, w: &Linear, acc: &mut [i32]) {
    use std::arch::x86_64::*;
    let groups = w.k / 4;
    let (k, n) = (w.k, w.n);
    let xp = x.as_ptr().add(r0 * k);
    let wp = w.packed.as_ptr();
    let ones = _mm256_set1_epi16(1);
    for block in 0..n / 8 {
        let mut sums = [_mm256_setzero_si256(); R];
        let base = wp.add(block * groups * 32);
        for g in 0..groups {
            let wv = _mm256_loadu_si256(base.add(g * 32) as *const __m256i);
            for (i, s) in sums.iter_mut().enumerate() {
                let four = (xp.add(i * k + g * 4) as *const i32).read_unaligned();
                let pairs = _mm256_maddubs_epi16(_mm256_set1_epi32(four), wv);
                *s = _mm256_add_epi32(*s, _mm256_madd_epi16(pairs, ones));
            }
        }
        for (i, s) in sums.iter().enumerate() {
            let at = acc.as_mut_ptr().add((r0 + i) * n + block * 8);
            _mm256_storeu_si256(at as *mut __m256i, *s);
        }
    }
}

/// Multi-head self-attention over one sentence (no padding, so no mask):
/// `qkv` is t rows of [query | key | value], `ctx` gets t × hidden. `D`
/// is the width of a head (32 in MiniLM, 64 in BERT base): a constant, so
/// a query's running sums stay in registers.
#[inline(always)]
fn attention<const D: usize>(
    qkv: &[f32],
    t: usize,
    h: usize,
    ctx: &mut [f32],
    scratch: &mut Scratch,
) {
    let heads = h / D;
    let scale = 1.0 / (D as f32).sqrt();
    let stride = 3 * h;
    // Keys transposed (D × tp, tp = t rounded up to 16, zero-padded), so
    // 16 of a query's scores are one register of multiply-adds.
    let tp = t.div_ceil(16) * 16;
    let Scratch { keys, scores, .. } = scratch;
    keys.clear();
    keys.resize(D * tp, 0.0);
    scores.resize(tp, 0.0);
    for head in 0..heads {
        for j in 0..t {
            let k = &qkv[j * stride + h + head * D..j * stride + h + head * D + D];
            for (e, kv) in k.iter().enumerate() {
                keys[e * tp + j] = *kv;
            }
        }
        for i in 0..t {
            let q = &qkv[i * stride + head * D..i * stride + head * D + D];
            for (block, out) in scores.chunks_exact_mut(16).enumerate() {
                let mut acc = [0f32; 16];
                for e in 0..D {
                    let qe = q[e] * scale;
                    let kr = &keys[e * tp + block * 16..e * tp + block * 16 + 16];
                    for l in 0..16 {
                        acc[l] += qe * kr[l];
                    }
                }
                out.copy_from_slice(&acc);
            }
            let live = &mut scores[..t];
            let (_, max) = min_max(live);
            for v in live.iter_mut() {
                *v = exp(*v - max);
            }
            let total = sum(live);
            let mut acc = [0f32; D];
            for (j, p) in live.iter().enumerate() {
                let p = p / total;
                let v = &qkv[j * stride + 2 * h + head * D..j * stride + 2 * h + head * D + D];
                for e in 0..D {
                    acc[e] += p * v[e];
                }
            }
            ctx[i * h + head * D..i * h + head * D + D].copy_from_slice(&acc);
        }
    }
}

#[inline(always)]
fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// A sum in 16 lanes, so it vectorizes (f32 addition is not reordered
/// for us).
#[inline(always)]
fn sum(x: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let chunks = x.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..16 {
            lanes[i] += c[i];
        }
    }
    for (i, v) in rest.iter().enumerate() {
        lanes[i] += v;
    }
    let mut total = 0.0;
    for l in lanes {
        total += l;
    }
    total
}

/// A dot product in 16 lanes (see `sum`).
#[inline(always)]
fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let (cx, cy) = (x.chunks_exact(16), y.chunks_exact(16));
    let (rx, ry) = (cx.remainder(), cy.remainder());
    for (a, b) in cx.zip(cy) {
        for i in 0..16 {
            lanes[i] += a[i] * b[i];
        }
    }
    for (i, (a, b)) in rx.iter().zip(ry).enumerate() {
        lanes[i] += a * b;
    }
    let mut total = 0.0;
    for l in lanes {
        total += l;
    }
    total
}

/// Rounds half to even without a library call (`round_ties_even` is one
/// on CPUs before SSE4.1): adding 1.5 × 2^23 leaves no fraction bits.
/// Exact for |x| < 2^22, which covers every use here.
#[inline(always)]
fn round_even(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (x + MAGIC) - MAGIC
}

#[inline(always)]
fn min_max(row: &[f32]) -> (f32, f32) {
    let mut lo = [f32::INFINITY; 16];
    let mut hi = [f32::NEG_INFINITY; 16];
    let chunks = row.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..16 {
            lo[i] = if c[i] < lo[i] { c[i] } else { lo[i] };
            hi[i] = if c[i] > hi[i] { c[i] } else { hi[i] };
        }
    }
    for (i, v) in rest.iter().enumerate() {
        lo[i] = lo[i].min(*v);
        hi[i] = hi[i].max(*v);
    }
    let (mut l, mut h) = (f32::INFINITY, f32::NEG_INFINITY);
    for i in 0..16 {
        l = l.min(lo[i]);
        h = h.max(hi[i]);
    }
    (l, h)
}

#[inline(always)]
fn layer_norm(x: &mut [f32], norm: &Norm, eps: f32) {
    let h = norm.gain.len();
    for row in x.chunks_exact_mut(h) {
        let mean = sum(row) / h as f32;
        let mut lanes = [0f32; 16];
        let chunks = row.chunks_exact(16);
        let rest = chunks.remainder();
        for c in chunks {
            for i in 0..16 {
                lanes[i] += (c[i] - mean) * (c[i] - mean);
            }
        }
        for (i, v) in rest.iter().enumerate() {
            lanes[i] += (v - mean) * (v - mean);
        }
        let var = sum(&lanes) / h as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(&norm.gain).zip(&norm.bias) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

/// e^x without a library call, so it vectorizes: x = n ln 2 + f with
/// |f| <= ln 2 / 2 (ln 2 in two parts, so n ln 2 is exact enough), then
/// 2^n times a degree-6 polynomial for e^f (relative error about 2e-7).
/// Inputs below -87 give about 1e-38, not 0.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let n = round_even(x * std::f32::consts::LOG2_E);
    let f = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + f * (1.0
            + f * (0.5
                + f * (1.0 / 6.0 + f * (1.0 / 24.0 + f * (1.0 / 120.0 + f * (1.0 / 720.0))))));
    f32::from_bits(((n as i32 + 127) as u32) << 23) * p
}

/// BERT's GELU, x Φ(x), with erf from Abramowitz and Stegun 7.1.26
/// (absolute error below 1.5e-7).
#[inline(always)]
fn gelu(x: f32) -> f32 {
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let erf = 1.0 - poly * exp(-z * z);
    let erf = if x < 0.0 { -erf } else { erf };
    0.5 * x * (1.0 + erf)
}

/// f32 to bf16 bits, rounded to nearest even.
fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    let round = 0x7fff + ((b >> 16) & 1);
    (b.wrapping_add(round) >> 16) as u16
}

#[inline(always)]
fn bf16_value(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))
}

/// The f32 tensors of a safetensors file: an 8-byte little-endian header
/// length, a JSON header naming each tensor's dtype, shape and byte range,
/// then the data.
struct Tensors {
    bytes: Vec<u8>,
    start: usize,
    index: HashMap<String, (Vec<usize>, usize, usize)>,
}

impl Tensors {
    fn read(path: &Path) -> Result<Tensors, String> {
        let bad = |why: &str| format!("model.safetensors: {why}");
        let bytes = std::fs::read(path).map_err(|e| bad(&e.to_string()))?;
        let len = bytes
            .get(..8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize)
            .ok_or_else(|| bad("shorter than its header"))?;
        let header = bytes
            .get(8..8usize.saturating_add(len))
            .ok_or_else(|| bad("shorter than its header"))?;
        let header: HashMap<String, serde_json::Value> =
            serde_json::from_slice(header).map_err(|e| bad(&format!("header: {e}")))?;
        let mut index = HashMap::new();
        for (name, info) in header {
            if name == "__metadata__" {
                continue;
            }
            if info.get("dtype").and_then(|d| d.as_str()) != Some("F32") {
                continue;
            }
            let shape: Vec<usize> = info
                .get("shape")
                .and_then(|s| s.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_u64())
                        .map(|v| v as usize)
                        .collect()
                })
                .unwrap_or_default();
            let range = info
                .get("data_offsets")
                .and_then(|s| s.as_array())
                .and_then(|a| Some((a.first()?.as_u64()? as usize, a.get(1)?.as_u64()? as usize)));
            let Some((a, b)) = range else {
                return Err(bad(&format!("{name} has no data_offsets")));
            };
            index.insert(name, (shape, a, b));
        }
        Ok(Tensors {
            bytes,
            start: 8 + len,
            index,
        })
    }

    /// The tensor `name`, checked against `shape` (a 0 matches any size).
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        let bad = |why: String| format!("model.safetensors: {name}: {why}");
        let (have, a, b) = self
            .index
            .remove(name)
            .ok_or_else(|| bad("missing (or not f32)".into()))?;
        let fits =
            have.len() == shape.len() && have.iter().zip(shape).all(|(h, s)| *s == 0 || h == s);
        if !fits {
            return Err(bad(format!("shape {have:?}, expected {shape:?}")));
        }
        let out_of_bounds = || bad("data out of the file's bounds".into());
        let bytes = have
            .iter()
            .try_fold(4usize, |n, d| n.checked_mul(*d))
            .ok_or_else(out_of_bounds)?;
        let (from, to) = (
            self.start.checked_add(a).ok_or_else(out_of_bounds)?,
            self.start.checked_add(b).ok_or_else(out_of_bounds)?,
        );
        let data = self
            .bytes
            .get(from..to)
            .filter(|d| d.len() == bytes)
            .ok_or_else(out_of_bounds)?;
        Ok(data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    fn norm(&mut self, prefix: &str, h: usize) -> Result<Norm, String> {
        Ok(Norm {
            gain: self.take(&format!("{prefix}.weight"), &[h])?,
            bias: self.take(&format!("{prefix}.bias"), &[h])?,
        })
    }

    fn linear(
        &mut self,
        prefix: &str,
        n: usize,
        k: usize,
        kernel: Kernel,
    ) -> Result<Linear, String> {
        let w = self.take(&format!("{prefix}.weight"), &[n, k])?;
        let b = self.take(&format!("{prefix}.bias"), &[n])?;
        Ok(Linear::new(&w, b, n, k, kernel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_gelu_match_the_library_functions() {
        for i in -400..=200 {
            let x = i as f32 / 10.0;
            let want = x.exp();
            assert!((exp(x) - want).abs() <= want * 1e-6 + 1e-30, "exp({x})");
        }
        // The series loses digits beyond |x| = 4 (where GELU is x or 0).
        for i in -40..=40 {
            let x = i as f32 / 10.0;
            // erf from its series is slow but exact enough for a check.
            let z = x as f64 / std::f64::consts::SQRT_2;
            let mut erf = 0f64;
            let mut term = z;
            for n in 0..200 {
                erf += term / (2 * n + 1) as f64;
                term *= -z * z / (n + 1) as f64;
            }
            let erf = erf * 2.0 / std::f64::consts::PI.sqrt();
            let want = 0.5 * x as f64 * (1.0 + erf);
            assert!(
                (gelu(x) as f64 - want).abs() < 1e-5,
                "gelu({x}) {} vs {want}",
                gelu(x)
            );
        }
    }

    /// A model directory with `config` and a safetensors file of `header`
    /// (a JSON object) and `data`.
    fn model_dir(name: &str, config: &str, header: &str, data: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("int8bert-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), config).unwrap();
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
        dir
    }

    const CONFIG: &str = r#"{"hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 128,
        "num_hidden_layers": 1, "max_position_embeddings": 8, "vocab_size": 4, "hidden_act": "gelu"}"#;

    #[test]
    fn malformed_model_files_are_errors_not_aborts() {
        let (mut embed_header, mut at) = (String::from("{"), 0usize);
        for (name, shape) in [
            ("embeddings.word_embeddings.weight", vec![4, 64]),
            ("embeddings.position_embeddings.weight", vec![8, 64]),
            ("embeddings.token_type_embeddings.weight", vec![2, 64]),
            ("embeddings.LayerNorm.weight", vec![64]),
            ("embeddings.LayerNorm.bias", vec![64]),
        ] {
            let len = shape.iter().product::<usize>() * 4;
            if at > 0 {
                embed_header.push(',');
            }
            embed_header.push_str(&format!(
                r#""{name}": {{"dtype": "F32", "shape": {shape:?}, "data_offsets": [{at}, {}]}}"#,
                at + len
            ));
            at += len;
        }
        embed_header.push('}');
        let embed_data = vec![0u8; at];
        let huge = CONFIG.replace(
            "\"num_hidden_layers\": 1",
            "\"num_hidden_layers\": 1000000000000",
        );
        let cases = [
            ("not-json", CONFIG, "not json", &[][..], "header"),
            ("empty", CONFIG, "{}", &[][..], "missing"),
            (
                "offsets",
                CONFIG,
                r#"{"embeddings.word_embeddings.weight": {"dtype": "F32", "shape": [4, 64], "data_offsets": [18446744073709551000, 18446744073709551615]}}"#,
                &[][..],
                "out of the file's bounds",
            ),
            (
                "shape",
                CONFIG,
                r#"{"embeddings.word_embeddings.weight": {"dtype": "F32", "shape": [4, 65], "data_offsets": [0, 4]}}"#,
                &[0u8; 4][..],
                "expected",
            ),
            // The embeddings are whole, so loading reaches the layers.
            (
                "layers",
                huge.as_str(),
                &embed_header,
                &embed_data[..],
                "encoder.layer.0",
            ),
            (
                "act",
                &CONFIG.replace("gelu", "relu"),
                "{}",
                &[][..],
                "hidden_act",
            ),
        ];
        for (name, config, header, data, want) in cases {
            let dir = model_dir(name, config, header, data);
            let e = Bert::load(&dir).unwrap_err();
            assert!(e.contains(want), "{name}: {e}");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn bf16_rounds_to_nearest() {
        assert_eq!(bf16_value(bf16_bits(1.0)), 1.0);
        let x = 0.123_456_79f32;
        assert!((bf16_value(bf16_bits(x)) - x).abs() < x / 256.0);
    }

    /// A small deterministic generator (xorshift64*), so a failure
    /// reproduces.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    /// The integer products of `kernel` (with the weights packed for it),
    /// as `Linear::apply` computes them.
    fn products(kernel: Kernel, x: &[u8], t: usize, lin: &Linear) -> Vec<i32> {
        let mut acc = vec![0; t * lin.n];
        match kernel {
            Kernel::Portable => dot_portable(x, t, lin, &mut acc),
            // SAFETY: only called for kernels `supported()` on this CPU.
            #[cfg(target_arch = "x86_64")]
            Kernel::Vnni => unsafe { dot_vnni(x, t, lin, &mut acc) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { dot_avx2(x, t, lin, &mut acc) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!(),
        }
        acc
    }

    /// Weight pairs around the `avx2` kernel's split: |w0| + |w1| of 128
    /// (kept whole: 255 × 128 fits in i16), 129 and 254 (split), the
    /// largest the quantizer makes (it clamps to ±127, so 255 and 256 do
    /// not occur), in every sign.
    const EDGE_PAIRS: [(i8, i8); 14] = [
        (64, 64),
        (-64, 64),
        (64, -64),
        (1, 127),
        (-127, -1),
        (65, 64),
        (-65, -64),
        (2, 127),
        (127, -2),
        (127, 127),
        (-127, -127),
        (127, -127),
        (0, 127),
        (-127, 0),
    ];

    /// Every kernel this CPU runs gives the portable kernel's integers on
    /// random matrices of several shapes and 1 to 13 rows (every remainder
    /// of the 4- and 12-row blocking), and on the extremes: all
    /// activations 255 against weights of ±127 (where two u8 × i8 products
    /// add up past i16, which `vpmaddubsw` alone would saturate), weight
    /// pairs at the `avx2` split's edge against activations of 0 and 255,
    /// and all 0.
    #[test]
    fn every_kernel_equals_the_portable_one() {
        let kernels: Vec<Kernel> = [Kernel::Vnni, Kernel::Avx2]
            .into_iter()
            .filter(|k| k.supported())
            .collect();
        // This machine (and CI's) has both; elsewhere the test still runs
        // what the CPU has.
        if std::env::var_os("INT8BERT_REQUIRE_KERNELS").is_some() {
            assert_eq!(kernels.len(), 2, "this CPU lacks AVX512-VNNI or AVX2");
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut checked = 0;
        let mut split = 0;
        for (n, k) in [(64, 4), (64, 64), (128, 96), (192, 384), (64, 1536)] {
            for case in 0..5 {
                // Integers as f32 with a ±127 in every row: the quantizer
                // keeps them exactly (scale 1).
                let w: Vec<f32> = (0..n * k)
                    .map(|i| match case {
                        0 => ((rng.next() % 255) as i32 - 127) as f32,
                        1 => {
                            if rng.next().is_multiple_of(2) {
                                127.0
                            } else {
                                -127.0
                            }
                        }
                        2 => 127.0,
                        3 => {
                            if i % k == 0 {
                                -127.0
                            } else {
                                ((rng.next() % 31) as i32 - 15) as f32
                            }
                        }
                        _ => {
                            // Pairs in order and then at random, so every
                            // pair meets every activation pattern.
                            let pair = if i / 2 < EDGE_PAIRS.len() {
                                i / 2
                            } else {
                                rng.next() as usize % EDGE_PAIRS.len()
                            };
                            let (w0, w1) = EDGE_PAIRS[pair];
                            (if i % 2 == 0 { w0 } else { w1 }) as f32
                        }
                    })
                    .collect();
                let w: Vec<f32> = w
                    .chunks_exact(k)
                    .flat_map(|row| {
                        let mut row = row.to_vec();
                        if case != 4 || row.iter().all(|v| v.abs() < 127.0) {
                            row[0] = if row[0] < 0.0 { -127.0 } else { 127.0 };
                        }
                        row
                    })
                    .collect();
                let reference = Linear::new(&w, vec![0.0; n], n, k, Kernel::Portable);
                assert!(reference.scale.iter().all(|s| *s == 1.0));
                for t in 1..=13 {
                    let x: Vec<u8> = (0..t * k)
                        .map(|_| match case {
                            _ if t == 13 => 0,
                            1 | 2 => 255,
                            4 if t % 2 == 1 => 255,
                            4 => {
                                if rng.next().is_multiple_of(2) {
                                    255
                                } else {
                                    0
                                }
                            }
                            _ => rng.next() as u8,
                        })
                        .collect();
                    let want = products(Kernel::Portable, &x, t, &reference);
                    if case == 2 && t < 13 {
                        assert_eq!(want[0], 255 * 127 * k as i32, "the reference itself");
                    }
                    for &kernel in &kernels {
                        let lin = Linear::new(&w, vec![0.0; n], n, k, kernel);
                        split += lin.fixes.len();
                        let got = products(kernel, &x, t, &lin);
                        assert_eq!(got, want, "{kernel}: {n}×{k}, case {case}, {t} rows");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 5 * 5 * 13 * kernels.len());
        if kernels.contains(&Kernel::Avx2) {
            assert!(
                split > 0,
                "no pair was split: the sparse part went untested"
            );
        }
    }

    /// The `avx2` packing splits exactly the pairs whose magnitudes add up
    /// past 128, keeps the rest whole, and loses no weight.
    #[test]
    fn avx2_packing_splits_the_pairs_that_could_saturate() {
        for (w0, w1) in EDGE_PAIRS {
            let (kept, out) = split_pair(w0, w1);
            let total = (w0 as i32).abs() + (w1 as i32).abs();
            assert_eq!(out.is_some(), total > 128, "({w0}, {w1})");
            assert!((kept[0] as i32).abs() + (kept[1] as i32).abs() <= 128);
            let mut back = kept;
            if let Some((at, w)) = out {
                assert_eq!(back[at], 0);
                back[at] = w;
            }
            assert_eq!(back, [w0, w1]);
        }
        // One row of 64 outputs' worth: the edge pairs, then zeros.
        let (n, k) = (64, 32);
        let mut w = vec![0f32; n * k];
        for o in 0..n {
            for (p, (w0, w1)) in EDGE_PAIRS.iter().enumerate() {
                w[o * k + 2 * p] = *w0 as f32;
                w[o * k + 2 * p + 1] = *w1 as f32;
            }
        }
        let lin = Linear::new(&w, vec![0.0; n], n, k, Kernel::Avx2);
        let over = EDGE_PAIRS
            .iter()
            .filter(|(a, b)| (*a as i32).abs() + (*b as i32).abs() > 128)
            .count();
        assert_eq!(lin.fixes.len(), n * over);
        assert!(lin
            .packed
            .chunks_exact(2)
            .all(|p| (p[0] as i32).abs() + (p[1] as i32).abs() <= 128));
    }

    #[test]
    fn kernels_parse_and_refuse_what_the_cpu_lacks() {
        for k in [Kernel::Vnni, Kernel::Avx2, Kernel::Portable] {
            assert_eq!(k.name().parse::<Kernel>(), Ok(k));
        }
        assert!("sse".parse::<Kernel>().unwrap_err().contains("\"avx2\""));
        assert!(Kernel::best().supported());
        assert!(Kernel::Portable.supported());
        for k in [Kernel::Vnni, Kernel::Avx2] {
            if !k.supported() {
                let e = Bert::load_with(Path::new("/nonexistent"), k).unwrap_err();
                assert!(e.contains("CPU"), "{e}");
            }
        }
    }
}

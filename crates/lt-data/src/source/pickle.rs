//! A minimal, safe pickle reader for the CIFAR python batches (`cifar-10-batches-py`).
//!
//! It interprets only the opcodes those files use (protocols 2-4: containers, strings, bytes,
//! small ints, memo) and recognises exactly two globals, `numpy.core.multiarray._reconstruct`
//! (also `numpy._core.multiarray`) and `numpy.dtype`, whose effect it reproduces itself. No
//! code is ever executed; any other opcode or global is refused with an error.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::{CIFAR10_NAMES, Dataset, Split};
use crate::error::DataError;
use crate::progress::Progress;

/// A value of the pickle machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// py2 `str` (read as bytes) and py3 `bytes`.
    Bytes(Rc<Vec<u8>>),
    Str(Rc<str>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// One of the allowed globals.
    Global(Global),
    /// `numpy.dtype(...)`: the type string, e.g. `u1`.
    Dtype(String),
    /// A numpy array: shape, dtype string, C-order flag, raw data.
    Array {
        shape: Vec<usize>,
        dtype: String,
        fortran: bool,
        data: Rc<Vec<u8>>,
    },
    /// `_reconstruct(ndarray, ...)` before its BUILD.
    EmptyArray,
}

/// The globals the reader knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Global {
    Reconstruct,
    Ndarray,
    Dtype,
}

enum Item {
    Mark,
    V(Value),
}

struct Machine<'a> {
    path: &'a Path,
    data: &'a [u8],
    pos: usize,
    stack: Vec<Item>,
    memo: Vec<Option<Value>>,
}

impl<'a> Machine<'a> {
    fn err(&self, offset: usize, message: impl Into<String>) -> DataError {
        DataError::Pickle { path: self.path.to_path_buf(), offset, message: message.into() }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DataError> {
        if self.data.len() - self.pos < n {
            return Err(self.err(self.pos, format!("truncated: {n} more bytes expected; the file is incomplete")));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, DataError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<usize, DataError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]) as usize)
    }

    fn u32(&mut self) -> Result<usize, DataError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn u64(&mut self) -> Result<usize, DataError> {
        let b = self.take(8)?;
        let v = u64::from_le_bytes(b.try_into().expect("8 bytes"));
        usize::try_from(v).map_err(|_| self.err(self.pos - 8, format!("length {v} too large")))
    }

    fn line(&mut self) -> Result<&'a str, DataError> {
        let start = self.pos;
        let end = self.data[start..]
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.err(start, "unterminated text line"))?;
        self.pos = start + end + 1;
        std::str::from_utf8(&self.data[start..start + end]).map_err(|_| self.err(start, "text line is not UTF-8"))
    }

    fn push(&mut self, v: Value) {
        self.stack.push(Item::V(v));
    }

    fn pop(&mut self, at: usize) -> Result<Value, DataError> {
        match self.stack.pop() {
            Some(Item::V(v)) => Ok(v),
            Some(Item::Mark) => Err(self.err(at, "unexpected mark on the stack")),
            None => Err(self.err(at, "stack underflow")),
        }
    }

    fn top(&mut self, at: usize) -> Result<&mut Value, DataError> {
        match self.stack.last_mut() {
            Some(Item::V(v)) => Ok(v),
            _ => {
                Err(DataError::Pickle { path: self.path.to_path_buf(), offset: at, message: "stack underflow".into() })
            }
        }
    }

    /// Pop everything down to the last mark.
    fn pop_mark(&mut self, at: usize) -> Result<Vec<Value>, DataError> {
        let mark = self
            .stack
            .iter()
            .rposition(|i| matches!(i, Item::Mark))
            .ok_or_else(|| self.err(at, "no mark on the stack"))?;
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items.into_iter().map(|i| if let Item::V(v) = i { v } else { unreachable!("marks removed") }).collect())
    }

    fn memo_put(&mut self, idx: usize, at: usize) -> Result<(), DataError> {
        if idx > 1 << 24 {
            return Err(self.err(at, format!("memo index {idx} is implausibly large")));
        }
        let v = self.top(at)?.clone();
        if self.memo.len() <= idx {
            self.memo.resize(idx + 1, None);
        }
        self.memo[idx] = Some(v);
        Ok(())
    }

    fn memo_get(&mut self, idx: usize, at: usize) -> Result<(), DataError> {
        let v = self.memo.get(idx).cloned().flatten().ok_or_else(|| self.err(at, format!("memo {idx} is empty")))?;
        self.push(v);
        Ok(())
    }

    fn global(&self, module: &str, name: &str, at: usize) -> Result<Global, DataError> {
        match (module, name) {
            ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => Ok(Global::Reconstruct),
            ("numpy", "ndarray") => Ok(Global::Ndarray),
            ("numpy", "dtype") => Ok(Global::Dtype),
            _ => Err(self.err(
                at,
                format!("global `{module}.{name}` is not allowed; only CIFAR's numpy arrays are read (no code is run)"),
            )),
        }
    }

    fn run(mut self) -> Result<Value, DataError> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if !(2..=5).contains(&proto) {
                        return Err(self.err(at, format!("pickle protocol {proto} is not supported (2-5 are)")));
                    }
                }
                0x95 => {
                    self.u64()?; // FRAME: a length hint only
                }
                b'.' => return self.pop(at),
                b'(' => self.stack.push(Item::Mark),
                b'}' => self.push(Value::Dict(Vec::new())),
                b']' => self.push(Value::List(Vec::new())),
                b')' => self.push(Value::Tuple(Vec::new())),
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(i64::from(v)))
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(v as i64))
                }
                b'J' => {
                    let b = self.take(4)?;
                    self.push(Value::Int(i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))))
                }
                0x8a => {
                    // LONG1: little-endian two's complement of n bytes
                    let n = self.u8()? as usize;
                    if n > 8 {
                        return Err(self.err(at, format!("integer of {n} bytes is too large")));
                    }
                    let b = self.take(n)?;
                    let mut v: i64 = 0;
                    for (i, &x) in b.iter().enumerate() {
                        v |= i64::from(x) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.push(Value::Int(v))
                }
                b'G' => {
                    let b = self.take(8)?;
                    self.push(Value::Float(f64::from_be_bytes(b.try_into().expect("8 bytes"))))
                }
                b'U' | b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(Rc::new(b)))
                }
                b'T' | b'B' => {
                    let n = self.u32()?;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(Rc::new(b)))
                }
                0x8e => {
                    let n = self.u64()?;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(Rc::new(b)))
                }
                b'X' | 0x8c | 0x8d => {
                    let n = match op {
                        b'X' => self.u32()?,
                        0x8c => self.u8()? as usize,
                        _ => self.u64()?,
                    };
                    let b = self.take(n)?;
                    let s = std::str::from_utf8(b).map_err(|_| self.err(at, "unicode string is not UTF-8"))?;
                    self.push(Value::Str(Rc::from(s)))
                }
                b'q' => {
                    let i = self.u8()? as usize;
                    self.memo_put(i, at)?
                }
                b'r' => {
                    let i = self.u32()?;
                    self.memo_put(i, at)?
                }
                0x94 => {
                    let i = self.memo.len();
                    self.memo_put(i, at)?
                }
                b'h' => {
                    let i = self.u8()? as usize;
                    self.memo_get(i, at)?
                }
                b'j' => {
                    let i = self.u32()?;
                    self.memo_get(i, at)?
                }
                b't' => {
                    let items = self.pop_mark(at)?;
                    self.push(Value::Tuple(items))
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop(at)?);
                    }
                    items.reverse();
                    self.push(Value::Tuple(items))
                }
                b'l' => {
                    let items = self.pop_mark(at)?;
                    self.push(Value::List(items))
                }
                b'a' => {
                    let v = self.pop(at)?;
                    match self.top(at)? {
                        Value::List(l) => l.push(v),
                        _ => return Err(self.err(at, "APPEND to a non-list")),
                    }
                }
                b'e' => {
                    let items = self.pop_mark(at)?;
                    match self.top(at)? {
                        Value::List(l) => l.extend(items),
                        _ => return Err(self.err(at, "APPENDS to a non-list")),
                    }
                }
                b'd' => {
                    let items = self.pop_mark(at)?;
                    let pairs = pairs(items).ok_or_else(|| self.err(at, "DICT with an odd number of items"))?;
                    self.push(Value::Dict(pairs))
                }
                b's' => {
                    let v = self.pop(at)?;
                    let k = self.pop(at)?;
                    match self.top(at)? {
                        Value::Dict(d) => d.push((k, v)),
                        _ => return Err(self.err(at, "SETITEM on a non-dict")),
                    }
                }
                b'u' => {
                    let items = self.pop_mark(at)?;
                    let new = pairs(items).ok_or_else(|| self.err(at, "SETITEMS with an odd number of items"))?;
                    match self.top(at)? {
                        Value::Dict(d) => d.extend(new),
                        _ => return Err(self.err(at, "SETITEMS on a non-dict")),
                    }
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = self.global(module, name, at)?;
                    self.push(Value::Global(g))
                }
                0x93 => {
                    let name = self.pop(at)?;
                    let module = self.pop(at)?;
                    let (Value::Str(m), Value::Str(n)) = (&module, &name) else {
                        return Err(self.err(at, "STACK_GLOBAL needs two strings"));
                    };
                    let g = self.global(m, n, at)?;
                    self.push(Value::Global(g))
                }
                b'R' => {
                    let args = self.pop(at)?;
                    let callable = self.pop(at)?;
                    let v = self.reduce(callable, args, at)?;
                    self.push(v)
                }
                b'b' => {
                    let state = self.pop(at)?;
                    let obj = self.pop(at)?;
                    let v = self.build(obj, state, at)?;
                    self.push(v)
                }
                other => {
                    return Err(self.err(
                        at,
                        format!("opcode 0x{other:02x} is not supported by this reader (only CIFAR's pickles are read)"),
                    ));
                }
            }
        }
    }

    fn reduce(&self, callable: Value, args: Value, at: usize) -> Result<Value, DataError> {
        let Value::Tuple(args) = args else {
            return Err(self.err(at, "REDUCE arguments are not a tuple"));
        };
        match callable {
            Value::Global(Global::Reconstruct) => match args.first() {
                Some(Value::Global(Global::Ndarray)) => Ok(Value::EmptyArray),
                _ => Err(self.err(at, "_reconstruct of something other than numpy.ndarray")),
            },
            Value::Global(Global::Dtype) => match args.first() {
                Some(Value::Str(s)) => Ok(Value::Dtype(s.to_string())),
                Some(Value::Bytes(b)) => Ok(Value::Dtype(String::from_utf8_lossy(b).into_owned())),
                _ => Err(self.err(at, "numpy.dtype without a type string")),
            },
            _ => Err(self.err(at, "REDUCE of a value that is not an allowed global")),
        }
    }

    fn build(&self, obj: Value, state: Value, at: usize) -> Result<Value, DataError> {
        match obj {
            // dtype state: (version, byte order, ...): the type string already says all we use.
            Value::Dtype(d) => Ok(Value::Dtype(d)),
            Value::EmptyArray => {
                let Value::Tuple(s) = state else {
                    return Err(self.err(at, "array state is not a tuple"));
                };
                // (version, shape, dtype, is_fortran, data)
                let [Value::Int(_), Value::Tuple(shape), Value::Dtype(dtype), fortran, data] = s.as_slice() else {
                    return Err(self.err(at, "array state is not (version, shape, dtype, fortran, data)"));
                };
                let shape = shape
                    .iter()
                    .map(|d| match d {
                        Value::Int(n) if *n >= 0 => Ok(*n as usize),
                        _ => Err(self.err(at, "array shape entry is not a non-negative int")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let fortran = matches!(fortran, Value::Bool(true) | Value::Int(1));
                let Value::Bytes(data) = data else {
                    return Err(self.err(at, "array data is not a byte string (object arrays are refused)"));
                };
                Ok(Value::Array { shape, dtype: dtype.clone(), fortran, data: data.clone() })
            }
            _ => Err(self.err(at, "BUILD on an object this reader does not know")),
        }
    }
}

fn pairs(items: Vec<Value>) -> Option<Vec<(Value, Value)>> {
    if !items.len().is_multiple_of(2) {
        return None;
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Some(out)
}

/// Parse a pickle held in memory.
pub fn parse(path: &Path, data: &[u8]) -> Result<Value, DataError> {
    Machine { path, data, pos: 0, stack: Vec::new(), memo: Vec::new() }.run()
}

/// Look a key (bytes or str) up in a dict value.
pub fn dict_get<'v>(dict: &'v Value, key: &str) -> Option<&'v Value> {
    let Value::Dict(d) = dict else { return None };
    d.iter().find_map(|(k, v)| match k {
        Value::Bytes(b) if b.as_slice() == key.as_bytes() => Some(v),
        Value::Str(s) if &**s == key => Some(v),
        _ => None,
    })
}

fn read_batch(path: &Path, image_len: usize, classes: usize) -> Result<Split, DataError> {
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DataError::Missing { path: path.into(), hint: "download cifar-10-python.tar.gz and extract it".into() }
        } else {
            DataError::io(path, e)
        }
    })?;
    let root = parse(path, &bytes)?;
    drop(bytes);
    let fmt = |message: String| DataError::Format { path: path.into(), message };
    let Some(Value::Array { shape, dtype, fortran, data }) = dict_get(&root, "data") else {
        return Err(fmt("no `data` array in the batch dict".into()));
    };
    if !matches!(dtype.as_str(), "u1" | "|u1" | "uint8") || *fortran {
        return Err(fmt(format!("`data` has dtype {dtype} (fortran order: {fortran}); expected C-order uint8")));
    }
    if shape.len() != 2 || shape[1] != image_len || data.len() != shape[0] * shape[1] {
        return Err(fmt(format!("`data` has shape {shape:?} and {} bytes; expected [N, {image_len}]", data.len())));
    }
    let Some(Value::List(labels)) = dict_get(&root, "labels") else {
        return Err(fmt("no `labels` list in the batch dict".into()));
    };
    if labels.len() != shape[0] {
        return Err(fmt(format!("{} labels for {} images", labels.len(), shape[0])));
    }
    let labels = labels
        .iter()
        .enumerate()
        .map(|(record, v)| match v {
            Value::Int(l) if (0..classes as i64).contains(l) => Ok(*l as u16),
            Value::Int(l) => {
                Err(DataError::LabelRange { path: path.into(), record, field: "label", value: *l as u64, classes })
            }
            other => Err(fmt(format!("label {record} is {other:?}, not an integer"))),
        })
        .collect::<Result<Vec<u16>, _>>()?;
    let images = Rc::try_unwrap(data.clone()).unwrap_or_else(|rc| (*rc).clone());
    Ok(Split { labels, images })
}

/// Read `cifar-10-batches-py` from `dir`.
pub fn load_cifar10_py(dir: &Path, progress: &dyn Progress) -> Result<Dataset, DataError> {
    let train_files: Vec<PathBuf> = (1..=5).map(|i| dir.join(format!("data_batch_{i}"))).collect();
    progress.stage("read source", 6);
    let mut train = Split::default();
    for f in &train_files {
        let s = read_batch(f, 3072, 10)?;
        train.labels.extend(s.labels);
        train.images.extend(s.images);
        progress.advance(1);
    }
    let test = read_batch(&dir.join("test_batch"), 3072, 10)?;
    progress.advance(1);
    progress.finish();
    let meta = dir.join("batches.meta");
    let class_names = match std::fs::read(&meta) {
        Ok(bytes) => {
            let v = parse(&meta, &bytes)?;
            match dict_get(&v, "label_names") {
                Some(Value::List(names)) if names.len() == 10 => names
                    .iter()
                    .map(|n| match n {
                        Value::Bytes(b) => Ok(String::from_utf8_lossy(b).into_owned()),
                        Value::Str(s) => Ok(s.to_string()),
                        _ => Err(DataError::Format {
                            path: meta.clone(),
                            message: "a label name is not a string".into(),
                        }),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                _ => {
                    return Err(DataError::Format {
                        path: meta,
                        message: "no `label_names` list of 10 names; fix or remove the file".into(),
                    });
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => CIFAR10_NAMES.iter().map(|s| s.to_string()).collect(),
        Err(e) => return Err(DataError::io(&meta, e)),
    };
    Ok(Dataset { class_names, image_shape: [3, 32, 32], train, test })
}

//! A minimal, safe pickle reader for the CIFAR python batches (`cifar-10-batches-py`).
//!
//! It interprets only the opcodes those files use (protocols 2-4: containers, strings, bytes,
//! small ints, memo) and recognises exactly two globals, `numpy.core.multiarray._reconstruct`
//! (also `numpy._core.multiarray`) and `numpy.dtype`, whose effect it reproduces itself. No
//! code is ever executed; any other opcode or global is refused with an error.
//!
//! Every size read from the input is bounded before anything is allocated: the file size
//! ([`MAX_FILE_BYTES`]), the number of values the machine may create, memo copies included
//! ([`MAX_VALUES`]), the nesting depth ([`MAX_DEPTH`]) and every length prefix (checked against
//! the bytes left). A crafted pickle gets an error naming the file, the byte offset and the
//! limit, never an allocation abort or a stack overflow. The limits are far above what CIFAR's
//! batches need, so they are not configurable.

use std::collections::HashMap;
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

/// Largest pickle file read (a CIFAR-10 python batch is about 31 MB).
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// Most values one parse may create, counting every copy a memo GET or PUT makes (a CIFAR
/// batch needs about 40,000). Bounds the memory of memo bombs to tens of MB.
pub const MAX_VALUES: usize = 1 << 20;
/// Deepest nesting of containers (a CIFAR batch nests 3 deep). Bounds the recursion of
/// clone and drop.
pub const MAX_DEPTH: usize = 32;
/// Longest numpy dtype string (`u1`, `<f8`, ...).
const MAX_DTYPE_LEN: usize = 16;

/// The size of a value's tree: nesting depth (0 for a scalar) and number of values in it.
#[derive(Debug, Clone, Copy)]
struct Shape {
    depth: usize,
    nodes: usize,
}

impl Shape {
    const LEAF: Shape = Shape { depth: 0, nodes: 1 };
    const EMPTY: Shape = Shape { depth: 1, nodes: 1 };

    /// A container holding children of these shapes.
    fn container<'s>(children: impl IntoIterator<Item = &'s Shape>) -> Shape {
        children.into_iter().fold(Shape { depth: 1, nodes: 1 }, |acc, c| Shape {
            depth: acc.depth.max(c.depth + 1),
            nodes: acc.nodes + c.nodes,
        })
    }
}

enum Item {
    Mark,
    V(Value, Shape),
}

struct Machine<'a> {
    path: &'a Path,
    data: &'a [u8],
    pos: usize,
    stack: Vec<Item>,
    /// Memo entries by index (a map, so that a huge index costs nothing).
    memo: HashMap<usize, (Value, Shape)>,
    /// Values created so far, memo copies included (bounded by [`MAX_VALUES`]).
    created: usize,
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

    /// Charge `n` new values to the budget.
    fn charge(&mut self, n: usize, at: usize) -> Result<(), DataError> {
        self.created = self.created.saturating_add(n);
        if self.created > MAX_VALUES {
            return Err(self.err(
                at,
                format!(
                    "more than {MAX_VALUES} values (the reader's limit; a CIFAR batch has about 40,000): \
                     not a CIFAR batch, or crafted to exhaust memory"
                ),
            ));
        }
        Ok(())
    }

    fn check_depth(&self, shape: Shape, at: usize) -> Result<(), DataError> {
        if shape.depth > MAX_DEPTH {
            return Err(self.err(
                at,
                format!("containers nested deeper than {MAX_DEPTH} levels (the reader's limit; CIFAR batches nest 3)"),
            ));
        }
        Ok(())
    }

    /// Push a new scalar (or empty container).
    fn push(&mut self, v: Value, at: usize) -> Result<(), DataError> {
        self.charge(1, at)?;
        let shape =
            if matches!(v, Value::List(_) | Value::Tuple(_) | Value::Dict(_)) { Shape::EMPTY } else { Shape::LEAF };
        self.stack.push(Item::V(v, shape));
        Ok(())
    }

    /// Push a new container of children of `shape` (already counted): one new value.
    fn push_shaped(&mut self, v: Value, shape: Shape, at: usize) -> Result<(), DataError> {
        self.check_depth(shape, at)?;
        self.charge(1, at)?;
        self.stack.push(Item::V(v, shape));
        Ok(())
    }

    fn pop(&mut self, at: usize) -> Result<(Value, Shape), DataError> {
        match self.stack.pop() {
            Some(Item::V(v, s)) => Ok((v, s)),
            Some(Item::Mark) => Err(self.err(at, "unexpected mark on the stack")),
            None => Err(self.err(at, "stack underflow")),
        }
    }

    fn pop_value(&mut self, at: usize) -> Result<Value, DataError> {
        Ok(self.pop(at)?.0)
    }

    /// The top value, after growing its shape by a child of shape `child` (APPEND, SETITEM).
    fn top_with(&mut self, child: Shape, at: usize) -> Result<&mut Value, DataError> {
        let shape = match self.stack.last() {
            Some(Item::V(_, s)) => {
                Shape { depth: s.depth.max(child.depth + 1), nodes: s.nodes.saturating_add(child.nodes) }
            }
            _ => return Err(self.err(at, "stack underflow")),
        };
        self.check_depth(shape, at)?;
        match self.stack.last_mut() {
            Some(Item::V(v, s)) => {
                *s = shape;
                Ok(v)
            }
            _ => unreachable!("checked above"),
        }
    }

    /// Pop everything down to the last mark, with the shape of a container holding it all.
    fn pop_mark(&mut self, at: usize) -> Result<(Vec<Value>, Shape), DataError> {
        let mark = self
            .stack
            .iter()
            .rposition(|i| matches!(i, Item::Mark))
            .ok_or_else(|| self.err(at, "no mark on the stack"))?;
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        let shape = Shape::container(items.iter().map(|i| match i {
            Item::V(_, s) => s,
            Item::Mark => unreachable!("marks removed"),
        }));
        self.check_depth(shape, at)?;
        let values = items.into_iter().map(|i| if let Item::V(v, _) = i { v } else { unreachable!("marks removed") });
        Ok((values.collect(), shape))
    }

    fn memo_put(&mut self, idx: usize, at: usize) -> Result<(), DataError> {
        let shape = match self.stack.last() {
            Some(Item::V(_, s)) => *s,
            _ => return Err(self.err(at, "stack underflow")),
        };
        // The copy is charged like new values, before it is made: repeated PUT/GET of a
        // growing value is the classic memo bomb.
        self.charge(shape.nodes, at)?;
        let Some(Item::V(v, _)) = self.stack.last() else { unreachable!("checked above") };
        let v = v.clone();
        self.memo.insert(idx, (v, shape));
        Ok(())
    }

    fn memo_get(&mut self, idx: usize, at: usize) -> Result<(), DataError> {
        let Some(shape) = self.memo.get(&idx).map(|e| e.1) else {
            return Err(self.err(at, format!("memo {idx} is empty")));
        };
        // Charge before copying: the copy is what a memo bomb multiplies.
        self.charge(shape.nodes, at)?;
        let v = self.memo[&idx].0.clone();
        self.stack.push(Item::V(v, shape));
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
                b'.' => return self.pop_value(at),
                b'(' => {
                    self.charge(1, at)?;
                    self.stack.push(Item::Mark)
                }
                b'}' => self.push(Value::Dict(Vec::new()), at)?,
                b']' => self.push(Value::List(Vec::new()), at)?,
                b')' => self.push(Value::Tuple(Vec::new()), at)?,
                b'N' => self.push(Value::None, at)?,
                0x88 => self.push(Value::Bool(true), at)?,
                0x89 => self.push(Value::Bool(false), at)?,
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(i64::from(v)), at)?
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(v as i64), at)?
                }
                b'J' => {
                    let b = self.take(4)?;
                    self.push(Value::Int(i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))), at)?
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
                    self.push(Value::Int(v), at)?
                }
                b'G' => {
                    let b = self.take(8)?;
                    self.push(Value::Float(f64::from_be_bytes(b.try_into().expect("8 bytes"))), at)?
                }
                // Byte strings: `take` checks each length against the bytes left before
                // anything is copied.
                b'U' | b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(Rc::new(b)), at)?
                }
                b'T' | b'B' => {
                    let n = self.u32()?;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(Rc::new(b)), at)?
                }
                0x8e => {
                    let n = self.u64()?;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(Rc::new(b)), at)?
                }
                b'X' | 0x8c | 0x8d => {
                    let n = match op {
                        b'X' => self.u32()?,
                        0x8c => self.u8()? as usize,
                        _ => self.u64()?,
                    };
                    let b = self.take(n)?;
                    let s = std::str::from_utf8(b).map_err(|_| self.err(at, "unicode string is not UTF-8"))?;
                    self.push(Value::Str(Rc::from(s)), at)?
                }
                // BINPUT, LONG_BINPUT, MEMOIZE.
                b'q' | b'r' | 0x94 => {
                    let i = match op {
                        b'q' => self.u8()? as usize,
                        b'r' => self.u32()?,
                        _ => self.memo.len(),
                    };
                    self.memo_put(i, at)?
                }
                // BINGET, LONG_BINGET.
                b'h' | b'j' => {
                    let i = if op == b'h' { self.u8()? as usize } else { self.u32()? };
                    self.memo_get(i, at)?
                }
                b't' => {
                    let (items, shape) = self.pop_mark(at)?;
                    self.push_shaped(Value::Tuple(items), shape, at)?
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    let mut shapes = Vec::with_capacity(n);
                    for _ in 0..n {
                        let (v, s) = self.pop(at)?;
                        items.push(v);
                        shapes.push(s);
                    }
                    items.reverse();
                    self.push_shaped(Value::Tuple(items), Shape::container(&shapes), at)?
                }
                b'l' => {
                    let (items, shape) = self.pop_mark(at)?;
                    self.push_shaped(Value::List(items), shape, at)?
                }
                b'a' => {
                    let (v, shape) = self.pop(at)?;
                    match self.top_with(shape, at)? {
                        Value::List(l) => l.push(v),
                        _ => return Err(self.err(at, "APPEND to a non-list")),
                    }
                }
                b'e' => {
                    let (items, shape) = self.pop_mark(at)?;
                    // The items' shapes, as if they were one child one level down.
                    let child = Shape { depth: shape.depth - 1, nodes: shape.nodes - 1 };
                    match self.top_with(child, at)? {
                        Value::List(l) => l.extend(items),
                        _ => return Err(self.err(at, "APPENDS to a non-list")),
                    }
                }
                b'd' => {
                    let (items, shape) = self.pop_mark(at)?;
                    let pairs = pairs(items).ok_or_else(|| self.err(at, "DICT with an odd number of items"))?;
                    self.push_shaped(Value::Dict(pairs), shape, at)?
                }
                b's' => {
                    let (v, vs) = self.pop(at)?;
                    let (k, ks) = self.pop(at)?;
                    let child = Shape { depth: vs.depth.max(ks.depth), nodes: vs.nodes.saturating_add(ks.nodes) };
                    match self.top_with(child, at)? {
                        Value::Dict(d) => d.push((k, v)),
                        _ => return Err(self.err(at, "SETITEM on a non-dict")),
                    }
                }
                b'u' => {
                    let (items, shape) = self.pop_mark(at)?;
                    let new = pairs(items).ok_or_else(|| self.err(at, "SETITEMS with an odd number of items"))?;
                    let child = Shape { depth: shape.depth - 1, nodes: shape.nodes - 1 };
                    match self.top_with(child, at)? {
                        Value::Dict(d) => d.extend(new),
                        _ => return Err(self.err(at, "SETITEMS on a non-dict")),
                    }
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = self.global(module, name, at)?;
                    self.push(Value::Global(g), at)?
                }
                0x93 => {
                    let name = self.pop_value(at)?;
                    let module = self.pop_value(at)?;
                    let (Value::Str(m), Value::Str(n)) = (&module, &name) else {
                        return Err(self.err(at, "STACK_GLOBAL needs two strings"));
                    };
                    let g = self.global(m, n, at)?;
                    self.push(Value::Global(g), at)?
                }
                b'R' => {
                    let args = self.pop_value(at)?;
                    let callable = self.pop_value(at)?;
                    let v = self.reduce(callable, args, at)?;
                    self.push(v, at)?
                }
                b'b' => {
                    let state = self.pop_value(at)?;
                    let obj = self.pop_value(at)?;
                    let v = self.build(obj, state, at)?;
                    self.push(v, at)?
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
                // Bounded: a memoized long string must not be copied once per REDUCE.
                Some(Value::Str(s)) if s.len() <= MAX_DTYPE_LEN => Ok(Value::Dtype(s.to_string())),
                Some(Value::Bytes(b)) if b.len() <= MAX_DTYPE_LEN => {
                    Ok(Value::Dtype(String::from_utf8_lossy(b).into_owned()))
                }
                Some(Value::Str(_) | Value::Bytes(_)) => {
                    Err(self.err(at, format!("numpy.dtype type string longer than {MAX_DTYPE_LEN} bytes")))
                }
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
    Machine { path, data, pos: 0, stack: Vec::new(), memo: HashMap::new(), created: 0 }.run()
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

/// Read a whole pickle file, refusing one larger than [`MAX_FILE_BYTES`] before reading it all
/// (a device or a huge sparse file must not fill memory).
fn read_file(path: &Path, missing_hint: &str) -> Result<Vec<u8>, DataError> {
    let file = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DataError::Missing { path: path.into(), hint: missing_hint.into() }
        } else {
            DataError::io(path, e)
        }
    })?;
    let bytes = super::read_bounded(path, file, MAX_FILE_BYTES, "a CIFAR python batch (about 31 MB)")?;
    if bytes.is_empty() {
        return Err(DataError::Format {
            path: path.into(),
            message: "the file is empty (0 bytes): a truncated download? fetch it again with `lt-data fetch`".into(),
        });
    }
    Ok(bytes)
}

/// A short name of a value's kind, for error messages (never the value: it may be huge).
fn kind(v: &Value) -> &'static str {
    match v {
        Value::None => "None",
        Value::Bool(_) => "a bool",
        Value::Int(_) => "an int",
        Value::Float(_) => "a float",
        Value::Bytes(_) => "a byte string",
        Value::Str(_) => "a string",
        Value::List(_) => "a list",
        Value::Tuple(_) => "a tuple",
        Value::Dict(_) => "a dict",
        Value::Global(_) => "a global",
        Value::Dtype(_) => "a dtype",
        Value::Array { .. } => "an array",
        Value::EmptyArray => "an empty array",
    }
}

fn read_batch(path: &Path, image_len: usize, classes: usize) -> Result<Split, DataError> {
    let bytes = read_file(path, "download cifar-10-python.tar.gz and extract it")?;
    let root = parse(path, &bytes)?;
    drop(bytes);
    let fmt = |message: String| DataError::Format { path: path.into(), message };
    let Some(Value::Array { shape, dtype, fortran, data }) = dict_get(&root, "data") else {
        return Err(fmt("no `data` array in the batch dict".into()));
    };
    if !matches!(dtype.as_str(), "u1" | "|u1" | "uint8") || *fortran {
        return Err(fmt(format!("`data` has dtype {dtype} (fortran order: {fortran}); expected C-order uint8")));
    }
    if shape.len() != 2 || shape[1] != image_len || shape[0].checked_mul(shape[1]) != Some(data.len()) {
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
            &Value::Int(l) if l >= 0 => {
                Err(DataError::LabelRange { path: path.into(), record, field: "label", value: l as u64, classes })
            }
            // Negative: printed as such, not as its two's complement.
            Value::Int(l) => Err(fmt(format!(
                "record {record} has label {l}, outside 0..{classes}; the file is corrupt or of another format"
            ))),
            other => Err(fmt(format!("label {record} is {}, not an integer", kind(other)))),
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
    let class_names = match read_file(&meta, "") {
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
        Err(DataError::Missing { .. }) => CIFAR10_NAMES.iter().map(|s| s.to_string()).collect(),
        Err(e) => return Err(e),
    };
    Ok(Dataset { class_names, image_shape: [3, 32, 32], train, test })
}

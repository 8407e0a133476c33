//! The OPA wasm ABI exports (1.3, with the 1.2 `opa_eval` fast path) and the heap they share with Rust.
//!
//! Value addresses are pointers to boxed `serde_json::Value`s; strings are NUL-terminated UTF-8. The heap is one
//! bump pointer that starts at `__heap_base` and is the OPA heap pointer itself: hosts save it after loading data
//! and reset it before each evaluation, which frees everything the evaluation allocated. Within an evaluation,
//! blocks of up to 64 KiB that Rust frees go to free lists, one per size class, and are handed out again, so the
//! memory of a decision is what it holds live rather than everything it ever allocated; the lists are emptied
//! whenever the heap pointer is set, so nothing above a reset pointer is ever handed out. Larger blocks are only
//! reclaimed by a reset, except that the most recent block can shrink or grow in place (so a growing `Vec` does
//! not copy).

// The ABI functions are exported by symbol name (`no_mangle`), not by Rust path.
#![allow(unreachable_pub)]

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use serde_json::Value;

unsafe extern "C" {
    /// Start of the heap, placed by the linker after the stack and static data.
    static __heap_base: u8;
}

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    /// Fatal error with a NUL-terminated message; never returns.
    #[link_name = "opa_abort"]
    fn host_opa_abort(addr: i32);
}

const PAGE: usize = 65_536;

/// The bump pointer; 0 until first use (then `__heap_base`).
static HEAP: AtomicUsize = AtomicUsize::new(0);
/// Start of the most recent allocation, which alone can be freed or resized in place.
static LAST: AtomicUsize = AtomicUsize::new(0);

fn heap_base() -> usize {
    core::ptr::addr_of!(__heap_base) as usize
}

fn heap_ptr() -> usize {
    match HEAP.load(Relaxed) {
        0 => heap_base(),
        p => p,
    }
}

fn set_heap_ptr(addr: usize) {
    HEAP.store(addr.max(heap_base()), Relaxed);
    LAST.store(0, Relaxed);
    for head in &FREE {
        head.store(0, Relaxed);
    }
}

/// Grows linear memory so that `end` is addressable; false when the host refuses.
fn ensure_memory(end: usize) -> bool {
    let have = core::arch::wasm32::memory_size(0) * PAGE;
    if end <= have {
        return true;
    }
    let pages = (end - have).div_ceil(PAGE);
    core::arch::wasm32::memory_grow(0, pages) != usize::MAX
}

fn bump(size: usize, align: usize) -> *mut u8 {
    let Some(start) = heap_ptr().checked_next_multiple_of(align.max(1)) else {
        return core::ptr::null_mut();
    };
    let Some(end) = start.checked_add(size) else {
        return core::ptr::null_mut();
    };
    if !ensure_memory(end) {
        return core::ptr::null_mut();
    }
    HEAP.store(end, Relaxed);
    LAST.store(start, Relaxed);
    start as *mut u8
}

/// Alignment of every size-class block; larger alignments bypass the classes.
const CLASS_ALIGN: usize = 16;
/// Classes of 16-byte steps up to this size, then four per doubling up to [`MAX_CLASS_SIZE`].
const FINE_LIMIT: usize = 1024;
const FINE_CLASSES: usize = FINE_LIMIT / CLASS_ALIGN;
const MAX_CLASS_SIZE: usize = 64 * 1024;
const CLASSES: usize = FINE_CLASSES + 4 * 6;

/// Head of each class's free list (0 when empty); a free block holds the address of the next one.
static FREE: [AtomicUsize; CLASSES] = [const { AtomicUsize::new(0) }; CLASSES];

/// The size class of a layout: its index and block size. `None` for blocks the classes do not serve.
fn class(layout: Layout) -> Option<(usize, usize)> {
    let size = layout.size().max(1);
    if layout.align() > CLASS_ALIGN || size > MAX_CLASS_SIZE {
        return None;
    }
    if size <= FINE_LIMIT {
        let index = (size - 1) / CLASS_ALIGN;
        return Some((index, (index + 1) * CLASS_ALIGN));
    }
    // (2^p, 2^(p+1)] in four steps of 2^(p-2), p from 10 to 15.
    let p = (usize::BITS - 1 - (size - 1).leading_zeros()) as usize;
    let step = 1 << (p - 2);
    let k = (size - (1 << p)).div_ceil(step);
    Some((FINE_CLASSES + (p - 10) * 4 + (k - 1), (1 << p) + k * step))
}

fn class_alloc(index: usize, size: usize) -> *mut u8 {
    let Some(head) = FREE.get(index) else {
        return core::ptr::null_mut();
    };
    match head.load(Relaxed) {
        0 => bump(size, CLASS_ALIGN),
        block => {
            // SAFETY: `block` was pushed by `class_free` after its owner freed it, and holds the next address.
            head.store(unsafe { (block as *const usize).read() }, Relaxed);
            block as *mut u8
        }
    }
}

fn class_free(index: usize, ptr: *mut u8) {
    if let Some(head) = FREE.get(index) {
        // SAFETY: the block is freed, at least 16 bytes long and 16-aligned: it can hold the next address.
        unsafe { (ptr as *mut usize).write(head.load(Relaxed)) };
        head.store(ptr as usize, Relaxed);
    }
}

fn is_last(start: usize, size: usize) -> bool {
    LAST.load(Relaxed) == start && start.checked_add(size) == Some(heap_ptr())
}

struct Bump;

// SAFETY: single-threaded wasm. A block is handed out either fresh from below the bump pointer or from a free list
// it entered only after Rust freed it, so no block is live twice; a heap reset, which by the ABI ends the life of
// everything allocated after the saved pointer, also empties the free lists.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class(layout) {
            Some((index, size)) => class_alloc(index, size),
            None => bump(layout.size(), layout.align()),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match class(layout) {
            Some((index, _)) => class_free(index, ptr),
            None => {
                let start = ptr as usize;
                if is_last(start, layout.size()) {
                    HEAP.store(start, Relaxed);
                    LAST.store(0, Relaxed);
                }
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let start = ptr as usize;
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return core::ptr::null_mut();
        };
        // In place when the block stays in its kind: a class block that still fits (freed later under the smaller
        // class, which it covers), or a large block that is the last one or shrinks. A block never moves between
        // the kinds in place, so every class block stays class-aligned and at least its class's size.
        match (class(layout), class(new_layout)) {
            (Some((_, size)), Some(_)) if new_size <= size => return ptr,
            (None, None) if is_last(start, layout.size()) => {
                let Some(end) = start.checked_add(new_size) else {
                    return core::ptr::null_mut();
                };
                if !ensure_memory(end) {
                    return core::ptr::null_mut();
                }
                HEAP.store(end, Relaxed);
                return ptr;
            }
            (None, None) if new_size <= layout.size() => return ptr,
            _ => {}
        }
        // SAFETY: a valid layout; the old block stays valid until freed below.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller of the two sizes and are distinct live blocks.
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: `ptr` was allocated with `layout` and is no longer used.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}

#[global_allocator]
static ALLOC: Bump = Bump;

/// Reports a fatal error to the host and traps.
fn abort(message: &str) -> ! {
    let mut text = Vec::with_capacity(message.len() + 1);
    text.extend_from_slice(message.as_bytes());
    text.push(0);
    // SAFETY: the host reads the NUL-terminated string at this address; the import never returns normally.
    unsafe { host_opa_abort(text.as_ptr() as i32) };
    core::arch::wasm32::unreachable()
}

fn panic_hook(info: &std::panic::PanicHookInfo<'_>) {
    abort(&format!("internal: {info}"));
}

/// Forwards panics to `opa_abort` so hosts see the message, not a bare trap. The hook is a plain function (a
/// zero-sized box), so installing it allocates nothing.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(panic_hook));
}

/// Bytes at `addr..addr+len` of linear memory.
///
/// SAFETY: the caller (the host, per the ABI) guarantees the range is inside memory and not mutated meanwhile.
unsafe fn bytes<'a>(addr: i32, len: i32) -> &'a [u8] {
    let len = usize::try_from(len).unwrap_or(0);
    if addr == 0 || len == 0 {
        return &[];
    }
    // SAFETY: see the function contract.
    unsafe { core::slice::from_raw_parts(addr as u32 as usize as *const u8, len) }
}

/// Leaks a buffer with a NUL terminator and returns its address.
fn leak_c_string(mut buf: Vec<u8>) -> i32 {
    buf.push(0);
    let ptr = buf.as_ptr() as i32;
    core::mem::forget(buf);
    ptr
}

/// What a value address points at: the value, and the exact JSON text it was parsed from, if it was.
///
/// The eval-context path hands the policy a parsed input; re-serialising it would not give the bytes the host
/// sent (keys come back sorted, a duplicate key silently wins), and the policy must answer exactly as it does
/// natively on those bytes. So the text is kept, and dropped when the value is changed in place. `value` comes
/// first so that a value address is also the address of its `Value`.
///
/// `result_set` marks the result set of the eval-context path, which Rego's value text writes as a set.
#[repr(C)]
struct Node {
    value: Value,
    text: Option<Box<[u8]>>,
    result_set: bool,
}

fn leak_value(value: Value) -> i32 {
    Box::into_raw(Box::new(Node { value, text: None, result_set: false })) as i32
}

/// The node behind a value address, if any.
///
/// SAFETY: `addr` must be 0 or an address this module returned for a value.
unsafe fn node<'a>(addr: i32) -> Option<&'a mut Node> {
    // SAFETY: see the function contract.
    (addr != 0).then(|| unsafe { &mut *(addr as u32 as usize as *mut Node) })
}

/// The value behind a value address, if any.
///
/// SAFETY: as for [`node`].
unsafe fn value<'a>(addr: i32) -> Option<&'a Value> {
    // SAFETY: see the function contract.
    unsafe { node(addr) }.map(|n| &n.value)
}

/// The value, to be changed in place (which drops its source text).
///
/// SAFETY: as for [`node`], and no other reference to the value is live.
unsafe fn value_mut<'a>(addr: i32) -> Option<&'a mut Value> {
    // SAFETY: see the function contract.
    unsafe { node(addr) }.map(|n| {
        n.text = None;
        &mut n.value
    })
}

fn parse_json(raw: &[u8]) -> i32 {
    // Some hosts count the C string's NUL terminator in the length.
    let end = raw.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    let text = raw.get(..end).unwrap_or_default();
    match serde_json::from_slice::<Value>(text) {
        Ok(value) => Box::into_raw(Box::new(Node { value, text: Some(text.into()), result_set: false })) as i32,
        Err(_) => 0,
    }
}

/// Evaluates and returns the result set as a NUL-terminated string: JSON, or Rego's value text for `format`
/// [`crate::FORMAT_REGO_VALUE`].
fn run(entrypoint: i32, input: &[u8], data: Option<&Value>, format: i32) -> i32 {
    let mut out = Vec::new();
    if crate::evaluate_into(entrypoint, input, data, &mut out).is_err() {
        abort(&format!("internal: illegal entrypoint id {entrypoint}"));
    }
    if format == crate::FORMAT_REGO_VALUE {
        crate::result_set_as_rego_set(&mut out);
    }
    leak_c_string(out)
}

#[unsafe(no_mangle)]
pub extern "C" fn opa_malloc(size: i32) -> i32 {
    let ptr = bump(usize::try_from(size).unwrap_or(0), 8);
    if ptr.is_null() {
        abort("opa_malloc: out of memory");
    }
    ptr as i32
}

#[unsafe(no_mangle)]
pub extern "C" fn opa_free(_addr: i32) {}

#[unsafe(no_mangle)]
pub extern "C" fn opa_heap_ptr_get() -> i32 {
    heap_ptr() as i32
}

#[unsafe(no_mangle)]
pub extern "C" fn opa_heap_ptr_set(addr: i32) {
    set_heap_ptr(addr as u32 as usize);
}

/// SAFETY (ABI): `addr..addr+len` holds the JSON text.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn opa_json_parse(addr: i32, len: i32) -> i32 {
    // SAFETY: per the ABI.
    parse_json(unsafe { bytes(addr, len) })
}

/// SAFETY (ABI): as `opa_json_parse`. Rego set literals are not part of any input this policy reads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn opa_value_parse(addr: i32, len: i32) -> i32 {
    // SAFETY: per the ABI.
    parse_json(unsafe { bytes(addr, len) })
}

/// SAFETY (ABI): `addr` is a value address from this module.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn opa_json_dump(addr: i32) -> i32 {
    // SAFETY: per the ABI.
    let v = unsafe { value(addr) }.unwrap_or(&Value::Null);
    leak_c_string(serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec()))
}

/// Rego's value text: JSON, except that the eval-context path's result set is a set (OPA's Go runtime reads it so).
///
/// SAFETY (ABI): as `opa_json_dump`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn opa_value_dump(addr: i32) -> i32 {
    // SAFETY: per the ABI.
    let Some(node) = (unsafe { node(addr) }) else {
        return leak_c_string(b"null".to_vec());
    };
    let mut text = serde_json::to_vec(&node.value).unwrap_or_else(|_| b"null".to_vec());
    if node.result_set {
        crate::result_set_as_rego_set(&mut text);
    }
    leak_c_string(text)
}

#[unsafe(no_mangle)]
pub extern "C" fn opa_value_free(_addr: i32) {}

#[unsafe(no_mangle)]
pub extern "C" fn opa_heap_blocks_stash() {}

#[unsafe(no_mangle)]
pub extern "C" fn opa_heap_blocks_restore() {}

#[unsafe(no_mangle)]
pub extern "C" fn opa_heap_stash_clear() {}

/// Inserts `value` at `path` (an array of strings) inside object `base`. Returns an OPA error code.
///
/// SAFETY (ABI): all three are value addresses from this module.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn opa_value_add_path(base: i32, path: i32, value_addr: i32) -> i32 {
    // SAFETY: per the ABI; `base` is distinct from the other two.
    let (Some(base), Some(path), Some(new)) =
        (unsafe { value_mut(base) }, unsafe { value(path) }, unsafe { value(value_addr) })
    else {
        return 1;
    };
    let Some(keys) = path.as_array().and_then(|k| k.iter().map(Value::as_str).collect::<Option<Vec<_>>>()) else {
        return 3;
    };
    let Some((last, parents)) = keys.split_last() else {
        return 3;
    };
    let mut node = base;
    for key in parents {
        let Some(obj) = node.as_object_mut() else {
            return 2;
        };
        node = obj.entry((*key).to_owned()).or_insert_with(|| Value::Object(Default::default()));
    }
    match node.as_object_mut() {
        Some(obj) => {
            obj.insert((*last).to_owned(), new.clone());
            0
        }
        None => 2,
    }
}

/// Removes the value at `path` inside object `base`. Returns an OPA error code.
///
/// SAFETY (ABI): both are value addresses from this module.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn opa_value_remove_path(base: i32, path: i32) -> i32 {
    // SAFETY: per the ABI.
    let (Some(base), Some(path)) = (unsafe { value_mut(base) }, unsafe { value(path) }) else {
        return 1;
    };
    let Some(keys) = path.as_array().and_then(|k| k.iter().map(Value::as_str).collect::<Option<Vec<_>>>()) else {
        return 3;
    };
    let Some((last, parents)) = keys.split_last() else {
        return 3;
    };
    let mut node = base;
    for key in parents {
        match node.get_mut(*key) {
            Some(next) => node = next,
            None => return 0,
        }
    }
    match node.as_object_mut() {
        Some(obj) => {
            obj.remove(*last);
            0
        }
        None => 2,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn builtins() -> i32 {
    leak_value(Value::Object(Default::default()))
}

#[unsafe(no_mangle)]
pub extern "C" fn entrypoints() -> i32 {
    leak_value(crate::entrypoints_json())
}

/// The evaluation context of the ABI's slow path.
#[repr(C)]
struct Ctx {
    input: i32,
    data: i32,
    entrypoint: i32,
    result: i32,
}

/// SAFETY (ABI): `ctx` is an address from `opa_eval_ctx_new`.
unsafe fn ctx<'a>(addr: i32) -> Option<&'a mut Ctx> {
    // SAFETY: per the ABI.
    (addr != 0).then(|| unsafe { &mut *(addr as u32 as usize as *mut Ctx) })
}

#[unsafe(no_mangle)]
pub extern "C" fn opa_eval_ctx_new() -> i32 {
    Box::into_raw(Box::new(Ctx { input: 0, data: 0, entrypoint: 0, result: 0 })) as i32
}

/// SAFETY (ABI): `ctx` from `opa_eval_ctx_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn opa_eval_ctx_set_input(ctx_addr: i32, value_addr: i32) {
    // SAFETY: per the ABI.
    if let Some(c) = unsafe { ctx(ctx_addr) } {
        c.input = value_addr;
    }
}

/// SAFETY (ABI): `ctx` from `opa_eval_ctx_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn opa_eval_ctx_set_data(ctx_addr: i32, value_addr: i32) {
    // SAFETY: per the ABI.
    if let Some(c) = unsafe { ctx(ctx_addr) } {
        c.data = value_addr;
    }
}

/// SAFETY (ABI): `ctx` from `opa_eval_ctx_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn opa_eval_ctx_set_entrypoint(ctx_addr: i32, entrypoint: i32) {
    // SAFETY: per the ABI.
    if let Some(c) = unsafe { ctx(ctx_addr) } {
        c.entrypoint = entrypoint;
    }
}

/// SAFETY (ABI): `ctx` from `opa_eval_ctx_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn opa_eval_ctx_get_result(ctx_addr: i32) -> i32 {
    // SAFETY: per the ABI.
    unsafe { ctx(ctx_addr) }.map_or(0, |c| c.result)
}

/// The ABI's slow path: evaluates the context and stores the result set as a value.
///
/// SAFETY (ABI): `ctx` from `opa_eval_ctx_new`, holding value addresses from this module.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn eval(ctx_addr: i32) -> i32 {
    install_panic_hook();
    // SAFETY: per the ABI.
    let Some(c) = (unsafe { ctx(ctx_addr) }) else {
        abort("internal: eval called without a context");
    };
    // SAFETY: per the ABI.
    let input: std::borrow::Cow<'_, [u8]> = match unsafe { node(c.input) } {
        Some(Node { text: Some(text), .. }) => std::borrow::Cow::Borrowed(text),
        Some(Node { value, text: None, .. }) => serde_json::to_vec(value).unwrap_or_default().into(),
        None => std::borrow::Cow::Borrowed(&[]),
    };
    // SAFETY: per the ABI, the data address is 0 or a value of this module.
    let result = run(c.entrypoint, &input, unsafe { value(c.data) }, 0);
    // SAFETY: `run` returned a NUL-terminated buffer it leaked.
    let text = unsafe { core::ffi::CStr::from_ptr(result as u32 as usize as *const core::ffi::c_char) };
    c.result = parse_json(text.to_bytes());
    // SAFETY: `parse_json` returned 0 or a node it just made.
    match unsafe { node(c.result) } {
        Some(node) => node.result_set = true,
        None => abort("internal: the result set is not valid JSON"),
    }
    0
}

/// The ABI 1.2 fast path: adopt the host's heap pointer, evaluate the raw JSON input, return the result set as a
/// NUL-terminated string in the `format` asked for (JSON, or Rego's value text).
///
/// SAFETY (ABI): `input..input+len` holds the input JSON, below `heap`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn opa_eval(
    _reserved: i32,
    entrypoint: i32,
    data: i32,
    input: i32,
    input_len: i32,
    heap: i32,
    format: i32,
) -> i32 {
    set_heap_ptr(heap as u32 as usize);
    install_panic_hook();
    // SAFETY: per the ABI; the input and the data lie below the heap pointer, so evaluation never overwrites them.
    run(entrypoint, unsafe { bytes(input, input_len) }, unsafe { value(data) }, format)
}

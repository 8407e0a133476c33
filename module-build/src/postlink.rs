//! Post-link step of the policy module: adds the two exported globals of the OPA wasm ABI.
//!
//! Rust cannot emit an exported *immutable i32 global holding a value* (a `static` exports its address), so after
//! linking, `opa_wasm_abi_version` and `opa_wasm_abi_minor_version` are appended to the module's global and export
//! sections. The step is a byte-level rewrite of two sections with no dependencies, shared by `cargo xtask
//! build-wasm` and host-runner's build script. It is idempotent: a module that already exports the globals is
//! returned unchanged.

/// Name of the exported global holding the ABI major version.
pub const ABI_VERSION_GLOBAL: &str = "opa_wasm_abi_version";
/// Name of the exported global holding the ABI minor version.
pub const ABI_MINOR_GLOBAL: &str = "opa_wasm_abi_minor_version";

const SECTION_IMPORT: u8 = 2;
const SECTION_GLOBAL: u8 = 6;
const SECTION_EXPORT: u8 = 7;
/// Non-custom section ids in the order the binary format requires them.
const SECTION_ORDER: [u8; 13] = [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11];

/// Returns `wasm` with the ABI globals (`major`, `minor`) added and exported.
pub fn add_abi_globals(wasm: &[u8], major: i32, minor: i32) -> Result<Vec<u8>, String> {
    if wasm.get(..8) != Some(b"\0asm\x01\0\0\0".as_slice()) {
        return Err("not a wasm binary module (bad magic or version)".into());
    }
    let mut sections = Vec::new();
    let mut at = 8;
    while at < wasm.len() {
        let id = *wasm.get(at).ok_or("truncated section header")?;
        let (size, n) = read_leb(wasm, at + 1)?;
        let start = at + 1 + n;
        let end = start.checked_add(size as usize).filter(|e| *e <= wasm.len()).ok_or("truncated section")?;
        sections.push((id, wasm.get(start..end).ok_or("truncated section")?));
        at = end;
    }

    let imported_globals = match sections.iter().find(|(id, _)| *id == SECTION_IMPORT) {
        Some((_, body)) => count_imported_globals(body)?,
        None => 0,
    };
    let (global_count, global_rest) = match sections.iter().find(|(id, _)| *id == SECTION_GLOBAL) {
        Some((_, body)) => {
            let (count, n) = read_leb(body, 0)?;
            (count, body.get(n..).ok_or("bad global section")?)
        }
        None => (0, &[][..]),
    };
    let (export_count, export_rest) = match sections.iter().find(|(id, _)| *id == SECTION_EXPORT) {
        Some((_, body)) => {
            let (count, n) = read_leb(body, 0)?;
            (count, body.get(n..).ok_or("bad export section")?)
        }
        None => (0, &[][..]),
    };
    if export_names(export_rest, export_count)?.iter().any(|name| name == ABI_VERSION_GLOBAL) {
        return Ok(wasm.to_vec());
    }

    let first_new = imported_globals + global_count;
    let mut globals = Vec::new();
    write_leb(&mut globals, global_count + 2);
    globals.extend_from_slice(global_rest);
    for value in [major, minor] {
        globals.extend_from_slice(&[0x7F, 0x00, 0x41]); // i32, immutable, i32.const
        write_sleb(&mut globals, value);
        globals.push(0x0B); // end
    }
    let mut exports = Vec::new();
    write_leb(&mut exports, export_count + 2);
    exports.extend_from_slice(export_rest);
    for (i, name) in [ABI_VERSION_GLOBAL, ABI_MINOR_GLOBAL].into_iter().enumerate() {
        write_leb(&mut exports, name.len() as u32);
        exports.extend_from_slice(name.as_bytes());
        exports.push(0x03); // global
        write_leb(&mut exports, first_new + i as u32);
    }

    let rank = |id: u8| SECTION_ORDER.iter().position(|x| *x == id);
    let global_rank = rank(SECTION_GLOBAL);
    let export_rank = rank(SECTION_EXPORT);
    let mut out = wasm.get(..8).ok_or("truncated header")?.to_vec();
    let (mut wrote_globals, mut wrote_exports) = (false, false);
    for (id, body) in &sections {
        let r = rank(*id);
        if !wrote_globals && *id != 0 && r > global_rank && *id != SECTION_GLOBAL {
            write_section(&mut out, SECTION_GLOBAL, &globals);
            wrote_globals = true;
        }
        if !wrote_exports && *id != 0 && r > export_rank && *id != SECTION_EXPORT {
            write_section(&mut out, SECTION_EXPORT, &exports);
            wrote_exports = true;
        }
        match *id {
            SECTION_GLOBAL => {
                write_section(&mut out, SECTION_GLOBAL, &globals);
                wrote_globals = true;
            }
            SECTION_EXPORT => {
                write_section(&mut out, SECTION_EXPORT, &exports);
                wrote_exports = true;
            }
            _ => write_section(&mut out, *id, body),
        }
    }
    if !wrote_globals {
        write_section(&mut out, SECTION_GLOBAL, &globals);
    }
    if !wrote_exports {
        write_section(&mut out, SECTION_EXPORT, &exports);
    }
    Ok(out)
}

fn write_section(out: &mut Vec<u8>, id: u8, body: &[u8]) {
    out.push(id);
    write_leb(out, body.len() as u32);
    out.extend_from_slice(body);
}

fn read_leb(bytes: &[u8], mut at: usize) -> Result<(u32, usize), String> {
    let start = at;
    let mut result: u64 = 0;
    let mut shift = 0;
    loop {
        let byte = *bytes.get(at).ok_or("truncated LEB128")?;
        at += 1;
        result |= u64::from(byte & 0x7F) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return Err("LEB128 too long".into());
        }
    }
    Ok((u32::try_from(result).map_err(|_| "LEB128 out of range")?, at - start))
}

fn skip_leb(bytes: &[u8], at: usize) -> Result<usize, String> {
    let mut at = at;
    loop {
        let byte = *bytes.get(at).ok_or("truncated LEB128")?;
        at += 1;
        if byte & 0x80 == 0 {
            return Ok(at);
        }
    }
}

fn write_leb(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7F) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn write_sleb(out: &mut Vec<u8>, mut value: i32) {
    loop {
        let byte = (value & 0x7F) as u8;
        value >>= 7;
        let done = (value == 0 && byte & 0x40 == 0) || (value == -1 && byte & 0x40 != 0);
        out.push(if done { byte } else { byte | 0x80 });
        if done {
            return;
        }
    }
}

fn skip_name(bytes: &[u8], at: usize) -> Result<usize, String> {
    let (len, n) = read_leb(bytes, at)?;
    Ok(at + n + len as usize)
}

fn skip_limits(bytes: &[u8], at: usize) -> Result<usize, String> {
    let flags = *bytes.get(at).ok_or("truncated limits")?;
    let at = skip_leb(bytes, at + 1)?;
    if flags & 1 == 1 { skip_leb(bytes, at) } else { Ok(at) }
}

fn count_imported_globals(body: &[u8]) -> Result<u32, String> {
    let (count, mut at) = read_leb(body, 0)?;
    let mut globals = 0;
    for _ in 0..count {
        at = skip_name(body, at)?;
        at = skip_name(body, at)?;
        let kind = *body.get(at).ok_or("truncated import")?;
        at += 1;
        at = match kind {
            0x00 => skip_leb(body, at)?,        // function: type index
            0x01 => skip_limits(body, at + 1)?, // table: ref type, limits
            0x02 => skip_limits(body, at)?,     // memory: limits
            0x03 => {
                globals += 1;
                at + 2 // global: value type, mutability
            }
            0x04 => skip_leb(body, at + 1)?, // tag: attribute, type index
            other => return Err(format!("unknown import kind {other:#x}")),
        };
    }
    Ok(globals)
}

fn export_names(body: &[u8], count: u32) -> Result<Vec<String>, String> {
    let mut at = 0;
    let mut names = Vec::new();
    for _ in 0..count {
        let (len, n) = read_leb(body, at)?;
        let start = at + n;
        let end = start + len as usize;
        names.push(String::from_utf8_lossy(body.get(start..end).ok_or("truncated export")?).into_owned());
        at = skip_leb(body, end + 1)?;
    }
    Ok(names)
}

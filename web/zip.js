// A minimal ZIP writer (stored entries, no compression) so the page can hand over the output directory as one
// file without a library. Format: PKWARE APPNOTE 6.3.x, local headers, central directory, end record.

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Builds a ZIP archive from `[{path, content}]` (content: string) and returns it as a Blob. */
export function zip(files) {
  const encoder = new TextEncoder();
  const parts = [];
  const central = [];
  let offset = 0;
  for (const file of files) {
    const name = encoder.encode(file.path);
    const data = encoder.encode(file.content);
    const crc = crc32(data);
    // A fixed timestamp (1980-01-01 00:00) keeps the archive the same for the same files.
    const header = (signature, extra) => {
      const fixed = new DataView(new ArrayBuffer(extra ? 46 : 30));
      let at = 0;
      const u16 = (v) => { fixed.setUint16(at, v, true); at += 2; };
      const u32 = (v) => { fixed.setUint32(at, v, true); at += 4; };
      u32(signature);
      if (extra) u16(20);
      u16(20); u16(0x0800); u16(0); u16(0); u16(0x21);
      u32(crc); u32(data.length); u32(data.length);
      u16(name.length); u16(0);
      if (extra) { u16(0); u16(0); u16(0); u32(0); u32(offset); }
      return new Uint8Array(fixed.buffer);
    };
    const local = header(0x04034b50, false);
    parts.push(local, name, data);
    central.push(header(0x02014b50, true), name);
    offset += local.length + name.length + data.length;
  }
  const centralSize = central.reduce((n, p) => n + p.length, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, files.length, true);
  end.setUint16(10, files.length, true);
  end.setUint32(12, centralSize, true);
  end.setUint32(16, offset, true);
  return new Blob([...parts, ...central, new Uint8Array(end.buffer)], { type: "application/zip" });
}

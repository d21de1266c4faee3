#!/usr/bin/env node
// Draws the demo PWA's icons (web/icons/icon-192.png, icon-512.png): a ferry
// on waves, full-bleed background so the same file serves as a maskable
// icon (everything drawn stays inside the 80% safe circle). Plain Node: the
// PNG is written by hand (zlib for IDAT). The PNGs are committed; run this
// again only to change the drawing:  node scripts/make-icons.mjs
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(root, 'web', 'icons');

const hex = (s) => [1, 3, 5].map((i) => parseInt(s.slice(i, i + 2), 16));
const BG = hex('#0f766e');
const BG2 = hex('#115e59');
const WHITE = hex('#ffffff');
const AMBER = hex('#f59e0b');
const FOAM = hex('#99f6e4');
const WINDOW = hex('#134e4a');

// Shapes in unit coordinates (0..1, y down), painted in order.
const inRect = (x0, y0, x1, y1) => (x, y) => x >= x0 && x < x1 && y >= y0 && y < y1;
function inPoly(pts) {
  return (x, y) => {
    let inside = false;
    for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) {
      const [xi, yi] = pts[i];
      const [xj, yj] = pts[j];
      if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
    }
    return inside;
  };
}
const wave = (y0, amp, periods, thick) => (x, y) => {
  if (x < 0.16 || x > 0.84) return false;
  const c = y0 + amp * Math.sin(x * Math.PI * 2 * periods);
  return Math.abs(y - c) < thick / 2;
};

const SHAPES = [
  [inRect(0.49, 0.27, 0.57, 0.41), AMBER],                                   // funnel
  [inRect(0.34, 0.39, 0.66, 0.53), WHITE],                                   // cabin
  ...[0.38, 0.46, 0.54].map((x) => [inRect(x, 0.43, x + 0.05, 0.48), WINDOW]), // windows
  [inPoly([[0.2, 0.53], [0.8, 0.53], [0.71, 0.66], [0.29, 0.66]]), WHITE],   // hull
  [wave(0.72, 0.014, 3, 0.032), FOAM],
  [wave(0.79, 0.014, 3, 0.032), FOAM],
];

function draw(size) {
  const ss = 4; // 4x4 supersampling
  const px = Buffer.alloc(size * size * 4);
  for (let py = 0; py < size; py++) {
    for (let pxI = 0; pxI < size; pxI++) {
      const acc = [0, 0, 0];
      for (let sy = 0; sy < ss; sy++) {
        for (let sx = 0; sx < ss; sx++) {
          const x = (pxI + (sx + 0.5) / ss) / size;
          const y = (py + (sy + 0.5) / ss) / size;
          // vertical gradient background
          let col = BG.map((c, k) => c + (BG2[k] - c) * y);
          for (const [hit, color] of SHAPES) if (hit(x, y)) col = color;
          for (let k = 0; k < 3; k++) acc[k] += col[k];
        }
      }
      const o = (py * size + pxI) * 4;
      for (let k = 0; k < 3; k++) px[o + k] = Math.round(acc[k] / (ss * ss));
      px[o + 3] = 255;
    }
  }
  return px;
}

const CRC = new Int32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});
function crc32(buf) {
  let c = -1;
  for (const b of buf) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

export function encodePng(size, rgba) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8;  // bit depth
  ihdr[9] = 6;  // RGBA
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0; // filter: none
    rgba.copy(raw, y * (size * 4 + 1) + 1, y * size * 4, (y + 1) * size * 4);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

fs.mkdirSync(outDir, { recursive: true });
for (const size of [192, 512]) {
  const file = path.join(outDir, `icon-${size}.png`);
  fs.writeFileSync(file, encodePng(size, draw(size)));
  console.log(`${path.relative(root, file)} (${fs.statSync(file).size} bytes)`);
}

/* The byte format of parameters and results between ferry_db_run and its
 * callers (the JS bindings), chosen so one call crosses the wasm boundary
 * per statement instead of one per value. All integers little-endian.
 *
 * params:  u32 count, then per parameter:
 *            u16 name_len, name bytes (0 = positional; ":x"/"@x"/"$x" or bare x)
 *            u8 type, value
 * value:   NULL: nothing | INT: i64 | FLOAT: f64 | TEXT/BLOB: u32 len, bytes
 * result:  u32 ncols, per column: u32 len, name bytes;
 *          then per row: u8 1, ncols values (u8 type, value); finally u8 0. */
#ifndef FERRY_CODEC_H
#define FERRY_CODEC_H

enum {
  FERRY_T_NULL = 0,
  FERRY_T_INT = 1,
  FERRY_T_FLOAT = 2,
  FERRY_T_TEXT = 3,
  FERRY_T_BLOB = 4
};

#endif

// --pre-js for the bench's wasm builds under Node: Module.ferryHost with the
// file half of bindings/host.js and its random bytes, over Node's synchronous
// fs calls exactly as bindings/storage/node-file.js does (pread/pwrite loops,
// fstat, ftruncate, fdatasync), so the wasm 'file' store pays what the
// product's pays. Returns -1 (read/size) or 1 (others) on failure, after
// printing why.
Module['ferryHost'] = (function () {
  var fs = require('fs');
  var files = new Map();
  var nextId = 1;
  function heap(ptr, n) { return HEAPU8.subarray(ptr, ptr + n); }
  function fail(e) { console.error('bench host: ' + (e && e.message || e)); }
  return {
    open: function (p) {
      try {
        var fd = fs.openSync(p, fs.constants.O_RDWR | fs.constants.O_CREAT, 420);
        var id = nextId++;
        files.set(id, fd);
        return id;
      } catch (e) { fail(e); return 0; }
    },
    fileRead: function (id, ptr, n, off) {
      try {
        var fd = files.get(id), u8 = heap(ptr, n), got = 0;
        while (got < n) {
          var r = fs.readSync(fd, u8, got, n - got, off + got);
          if (r === 0) break;
          got += r;
        }
        return got;
      } catch (e) { fail(e); return -1; }
    },
    fileWrite: function (id, ptr, n, off) {
      try {
        var fd = files.get(id), u8 = heap(ptr, n), done = 0;
        while (done < n) done += fs.writeSync(fd, u8, done, n - done, off + done);
        return 0;
      } catch (e) { fail(e); return 1; }
    },
    fileSize: function (id) {
      try { return fs.fstatSync(files.get(id)).size; } catch (e) { fail(e); return -1; }
    },
    fileTruncate: function (id, size) {
      try { fs.ftruncateSync(files.get(id), size); return 0; } catch (e) { fail(e); return 1; }
    },
    fileSync: function (id) {
      try { fs.fdatasyncSync(files.get(id)); return 0; } catch (e) { fail(e); return 1; }
    },
    fileClose: function (id) {
      var fd = files.get(id);
      files.delete(id);
      try { if (fd !== undefined) fs.closeSync(fd); } catch (e) { fail(e); }
    },
    random: function (ptr, n) {
      try { require('crypto').randomFillSync(heap(ptr, n)); return 0; } catch (e) { fail(e); return 1; }
    },
  };
})();

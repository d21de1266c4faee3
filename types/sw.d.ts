// `ferry/sw` is ferry's service worker script (service-worker/sw.js), to be
// served as a file (default '/sw.js', see ferry/pwa) and never imported into
// a page: it has no exports.
export {};

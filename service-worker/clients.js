// Asking a page something: the service worker posts a message with a
// MessageChannel port and waits for the page's one answer on it.

/** Posts `message` to `client` and resolves with its answer (`{}` when it answered nothing); rejects after `timeoutMs`. */
export function ask(client, message, timeoutMs) {
  return new Promise((resolve, reject) => {
    const channel = new MessageChannel();
    const timer = setTimeout(() => reject(new Error('the page did not answer')), timeoutMs);
    channel.port1.onmessage = (e) => { clearTimeout(timer); resolve(e.data || {}); };
    client.postMessage(message, [channel.port2]);
  });
}

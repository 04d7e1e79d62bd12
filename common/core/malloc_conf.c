/*
 * jemalloc's run-time options for every starling process (jemalloc reads this symbol at
 * start-up). A background thread returns freed pages to the kernel within about a
 * second instead of on some later allocation: a burst of logins (SASL machines, TLS
 * handshake buffers) must not stay in the resident size of a server that then idles.
 * Unused, and harmless, in builds without jemalloc (the sanitizers').
 */
const char *malloc_conf = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:1000";

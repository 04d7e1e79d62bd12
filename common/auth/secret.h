/*
 * secret: a node's 32-byte secrets, kept in files beside the database so that they survive
 * restarts and every process of the node reads the same bytes.
 *
 * Two uses so far, each with its own file (never one secret for two purposes):
 *   PATH.secret    c2s: unknown users' fake SCRAM credentials derive from it (sasl.h);
 *   PATH.dialback  s2s: Server Dialback keys (XEP-0185, s2s/dialback.h), so that a key
 *                  handed out before a restart still verifies after it.
 * PATH is storage.path, which config_load() makes absolute, so the supervisor's children
 * and starlingctl agree on where that is whatever their working directory.
 *
 * A cluster needs one dialback secret on every node (any node may be asked to verify a key
 * another one made); until clusters exist the file is per node.
 *
 * Blocking file I/O: call it at start-up, from a main thread.
 */
#ifndef STARLING_SECRET_H
#define STARLING_SECRET_H

#include <stdint.h>

#define SECRET_LEN 32

/*
 * Reads the secret in the file `db_path` + `suffix` ("PATH" ".dialback"), or makes one
 * from getrandom() and stores it there (mode 0600) when there is no such file. Processes
 * that race to make it agree: the first file linked into place wins and the others read
 * it. Returns 0, or -errno: -EIO for a file of another length (it is never overwritten:
 * an operator's file is not ours to replace), -ENAMETOOLONG, or what open(2) said.
 */
int secret_load(const char *db_path, const char *suffix, uint8_t out[SECRET_LEN]);

#endif

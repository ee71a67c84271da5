/* Xinyi Gateway: check in the browser that an audit entry is in the log.
 *
 * For entry #i the page fetches (with the signed-in enterprise's session) the entry,
 * the newest signed checkpoint, an RFC 9162 inclusion proof for i in that checkpoint's
 * tree and the log's verifier key, then, here in the browser:
 *   1. leaf = SHA-256(0x00 || RFC 8785 canonical JSON of the committed entry), compared
 *      with the leaf hash the log states. Format 2 entries (docs/audit.md) commit to
 *      each department's part and to the grant and model ids with salted SHA-256
 *      commitments: an opened part is replaced by its commitment, a part shown only as
 *      a commitment is used as it is, the convenience copies are left out;
 *   2. walks the inclusion proof (RFC 9162 §2.1.3.2) up to a root;
 *   3. compares that root with the root in the checkpoint;
 *   4. checks the checkpoint's Ed25519 signature (C2SP signed note) with the log's key,
 *      when the browser offers Ed25519 in WebCrypto (it says so when it does not).
 * SHA-256 comes from WebCrypto when available (secure contexts), else from the small
 * implementation below (FIPS 180-4), so plain-HTTP deployments still recompute the root.
 * No library, no build step. Exposed as window.XinyiVerify for the tests.
 */
(function () {
  "use strict";

  var enc = new TextEncoder();

  function concat(parts) {
    var n = 0, i, out, off = 0;
    for (i = 0; i < parts.length; i++) n += parts[i].length;
    out = new Uint8Array(n);
    for (i = 0; i < parts.length; i++) { out.set(parts[i], off); off += parts[i].length; }
    return out;
  }

  function equal(a, b) {
    if (a.length !== b.length) return false;
    var d = 0;
    for (var i = 0; i < a.length; i++) d |= a[i] ^ b[i];
    return d === 0;
  }

  function b64decode(s) {
    var bin = atob(s.trim()), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function b64encode(bytes) {
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s);
  }

  function hex(bytes) {
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    return s;
  }

  /* SHA-256 (FIPS 180-4), used only when crypto.subtle is missing. */
  var K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ]);

  function sha256js(msg) {
    var h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                             0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    var len = msg.length, total = ((len + 9 + 63) >> 6) << 6;
    var buf = new Uint8Array(total), w = new Uint32Array(64), dv, i, j;
    buf.set(msg);
    buf[len] = 0x80;
    dv = new DataView(buf.buffer);
    dv.setUint32(total - 8, Math.floor(len / 0x20000000));
    dv.setUint32(total - 4, (len << 3) >>> 0);
    function rotr(x, n) { return (x >>> n) | (x << (32 - n)); }
    for (i = 0; i < total; i += 64) {
      for (j = 0; j < 16; j++) w[j] = dv.getUint32(i + 4 * j);
      for (j = 16; j < 64; j++) {
        var s0 = rotr(w[j - 15], 7) ^ rotr(w[j - 15], 18) ^ (w[j - 15] >>> 3);
        var s1 = rotr(w[j - 2], 17) ^ rotr(w[j - 2], 19) ^ (w[j - 2] >>> 10);
        w[j] = (w[j - 16] + s0 + w[j - 7] + s1) >>> 0;
      }
      var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
      for (j = 0; j < 64; j++) {
        var t1 = (k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[j] + w[j]) >>> 0;
        var t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
        k = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
      }
      h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
    }
    var out = new Uint8Array(32), odv = new DataView(out.buffer);
    for (i = 0; i < 8; i++) odv.setUint32(4 * i, h[i]);
    return out;
  }

  function hasSubtle() { return !!(window.crypto && window.crypto.subtle); }

  async function sha256(bytes, forceJs) {
    if (!forceJs && hasSubtle()) {
      return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    }
    return sha256js(bytes);
  }

  /* RFC 8785 (JCS) for the values an audit entry holds: objects, arrays, strings,
     integers, booleans and null. Keys sort by UTF-16 code units (JS's default sort)
     and strings and numbers serialize as ECMAScript JSON.stringify does, which is
     exactly what RFC 8785 prescribes. */
  function canonical(v) {
    if (v === null || typeof v === "boolean" || typeof v === "string") return JSON.stringify(v);
    if (typeof v === "number") {
      if (!isFinite(v)) throw new Error("not representable in JSON");
      return JSON.stringify(v);
    }
    if (Array.isArray(v)) return "[" + v.map(canonical).join(",") + "]";
    if (typeof v === "object") {
      return "{" + Object.keys(v).sort().map(function (k) {
        return JSON.stringify(k) + ":" + canonical(v[k]);
      }).join(",") + "}";
    }
    throw new Error("unsupported JSON value");
  }

  async function leafHash(entryBytes, forceJs) {
    return sha256(concat([new Uint8Array([0]), entryBytes]), forceJs);
  }

  async function nodeHash(left, right, forceJs) {
    return sha256(concat([new Uint8Array([1]), left, right]), forceJs);
  }

  /* RFC 9162 §2.1.3.2: the root an inclusion proof leads to, or null when the proof
     has the wrong length for (index, size). */
  async function rootFromInclusionProof(index, size, leaf, proof, forceJs) {
    if (!(index >= 0 && index < size)) return null;
    var fn = index, sn = size - 1, r = leaf;
    for (var i = 0; i < proof.length; i++) {
      var p = proof[i];
      if (sn === 0) return null;
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(p, r, forceJs);
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
        }
      } else {
        r = await nodeHash(r, p, forceJs);
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    return sn === 0 ? r : null;
  }

  /* A C2SP tlog-checkpoint in a signed note: body lines, a blank line, signature lines
     "— <name> <base64(4-byte key hash || signature)>". */
  function parseCheckpoint(text) {
    var cut = text.indexOf("\n\n");
    if (cut < 0) throw new Error("not a signed note");
    var body = text.slice(0, cut + 1), lines = body.split("\n");
    var size = Number(lines[1]);
    if (!lines[0] || !/^[0-9]+$/.test(lines[1]) || !isFinite(size)) throw new Error("not a checkpoint");
    var sigs = text.slice(cut + 2).split("\n").filter(function (l) { return l.length; }).map(function (l) {
      var m = /^\u2014 (\S+) (\S+)$/.exec(l);
      if (!m) throw new Error("bad signature line");
      var raw = b64decode(m[2]);
      return { name: m[1], keyHash: raw.slice(0, 4), sig: raw.slice(4) };
    });
    return { origin: lines[0], size: size, root: b64decode(lines[2]), body: body, sigs: sigs };
  }

  /* A C2SP verifier key: name+hexkeyhash+base64(0x01 || Ed25519 public key). */
  function parseVkey(text) {
    // The name has no "+"; the base64 key data may.
    var m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+\/=]+)$/.exec(text.trim());
    if (!m) throw new Error("not a verifier key");
    var parts = m;
    var raw = b64decode(parts[3]);
    if (raw[0] !== 1 || raw.length !== 33) throw new Error("not an Ed25519 verifier key");
    return { name: parts[1], keyHash: parts[2], key: raw.slice(1) };
  }

  /* true / false, or null when this browser cannot check Ed25519 signatures. */
  async function verifyCheckpointSignature(cp, vkey) {
    var line = cp.sigs.filter(function (s) { return s.name === vkey.name && hex(s.keyHash) === vkey.keyHash; })[0];
    if (!line) return false;
    if (!hasSubtle()) return null;
    var key;
    try {
      key = await crypto.subtle.importKey("raw", vkey.key, { name: "Ed25519" }, false, ["verify"]);
    } catch (e) {
      return null;
    }
    return crypto.subtle.verify({ name: "Ed25519" }, key, line.sig, enc.encode(cp.body));
  }

  function entryBytes(entry) {
    return enc.encode(typeof entry === "string" ? entry : canonical(entry));
  }

  /* What a format 2 entry shows in clear (and hashes as it is). */
  var CLEAR = ["request_id", "client_request_id", "time", "institution", "enterprise",
               "departments", "operation", "decision", "v", "salt"];

  async function commitment(opened, forceJs) {
    return hex(await sha256(enc.encode(canonical(opened)), forceJs));
  }

  /* The committed entry a view stands for (format 1 entries are hashed as they are). */
  async function committedEntry(view, forceJs) {
    if (view === null || typeof view !== "object" || view.v !== 2) return view;
    var out = {}, parts = {}, names = Object.keys(view.parts || {}), i;
    CLEAR.forEach(function (k) { if (Object.prototype.hasOwnProperty.call(view, k)) out[k] = view[k]; });
    for (i = 0; i < names.length; i++) {
      var d = names[i], p = view.parts[d];
      parts[d] = typeof p === "string" ? p : await commitment(Object.assign({ department: d }, p), forceJs);
    }
    out.parts = parts;
    out["private"] = typeof view["private"] === "string" ? view["private"]
      : await commitment(view["private"] || {}, forceJs);
    return out;
  }

  async function getText(url) {
    var r = await fetch(url, { credentials: "same-origin", headers: { "Accept": "text/plain" } });
    if (!r.ok) throw new Error(url + ": HTTP " + r.status);
    return r.text();
  }

  async function getJson(url) {
    var r = await fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } });
    if (!r.ok) throw new Error(url + ": HTTP " + r.status);
    return r.json();
  }

  /* The whole check for one index; resolves to {status, ...} for the page to word. */
  async function verifyIndex(api, index) {
    var entry = await getJson(api + "/v1/audit/entries/" + index);
    var cp = parseCheckpoint(await getText(api + "/v1/audit/checkpoint"));
    if (index >= cp.size) return { status: "not-yet", size: cp.size };
    var leaf = await leafHash(entryBytes(await committedEntry(entry.entry)));
    if (entry.leaf_hash && !equal(leaf, b64decode(entry.leaf_hash))) return { status: "bad-leaf" };
    var proof = await getJson(api + "/v1/audit/proof/inclusion?index=" + index + "&size=" + cp.size);
    var root = await rootFromInclusionProof(index, cp.size, leaf, proof.hashes.map(b64decode));
    if (root === null || !equal(root, cp.root)) return { status: "bad-root", size: cp.size };
    var signed = await verifyCheckpointSignature(cp, parseVkey(await getText(api + "/v1/audit/vkey")));
    if (signed === false) return { status: "bad-signature", size: cp.size };
    return { status: signed ? "ok-signed" : "ok", size: cp.size, root: b64encode(root) };
  }

  function word(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, k) { return k in values ? String(values[k]) : ""; });
  }

  function wire() {
    var strings = document.getElementById("verify-strings");
    if (!strings) return;
    var api = (document.currentScript && document.currentScript.dataset.api) || "";
    var s = strings.dataset;
    var text = { "ok": s.ok, "ok-signed": s.okSigned, "bad-root": s.badRoot, "bad-leaf": s.badLeaf,
                 "bad-signature": s.badSignature, "not-yet": s.notYet };
    Array.prototype.forEach.call(document.querySelectorAll("button.verify"), function (button) {
      button.addEventListener("click", async function () {
        var index = Number(button.dataset.index);
        var out = document.getElementById("verify-result-" + index);
        out.className = "verify-result";
        out.textContent = s.checking;
        button.disabled = true;
        try {
          var res = await verifyIndex(api, index);
          var msg = word(text[res.status], { index: index, size: res.size, root: res.root || "" });
          if (res.status === "ok") msg += " " + s.noSignatureCheck;
          out.textContent = msg;
          out.className = "verify-result " + (res.status.indexOf("ok") === 0 ? "ok" : (res.status === "not-yet" ? "" : "bad"));
          out.dataset.status = res.status;
        } catch (e) {
          out.textContent = s.failed + " (" + e.message + ")";
          out.className = "verify-result bad";
          out.dataset.status = "error";
        } finally {
          button.disabled = false;
        }
      });
    });
  }

  window.XinyiVerify = {
    canonical: canonical, sha256: sha256, sha256js: sha256js, leafHash: leafHash,
    nodeHash: nodeHash, rootFromInclusionProof: rootFromInclusionProof,
    parseCheckpoint: parseCheckpoint, parseVkey: parseVkey,
    verifyCheckpointSignature: verifyCheckpointSignature, verifyIndex: verifyIndex,
    b64decode: b64decode, b64encode: b64encode, hex: hex, entryBytes: entryBytes,
    committedEntry: committedEntry
  };
  wire();
})();

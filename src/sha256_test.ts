import assert from "node:assert/strict";
import { hmacSha256, sha256, toBase64Url, toHex } from "./sha256.ts";

/** Deterministic bytes of a given length (no randomness: a failure must be reproducible). */
function bytes(length: number, seed = 1): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

Deno.test("sha256: FIPS 180-4 examples", () => {
  assert.equal(toHex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.equal(toHex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(
    toHex(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
});

Deno.test("sha256: equals Web Crypto's digest for every length across the block and padding edges", async () => {
  for (const length of [...Array.from({ length: 200 }, (_, i) => i), 1000, 4096, 65_537]) {
    const data = bytes(length, length + 7);
    const expected = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
    assert.deepEqual(sha256(data), expected, `length ${length}`);
  }
  const text = "quay-bridge/ü/名前";
  assert.deepEqual(
    sha256(text),
    new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))),
  );
});

Deno.test("hmacSha256: equals Web Crypto's HMAC for short, block-sized and long keys", async () => {
  for (const keyLength of [0, 1, 32, 63, 64, 65, 200]) {
    for (const messageLength of [0, 5, 64, 300]) {
      const key = bytes(keyLength, keyLength + 1);
      const message = bytes(messageLength, messageLength + 3);
      // Web Crypto refuses an empty HMAC key; an empty key is the same as 64 zero bytes.
      const webKey = await crypto.subtle.importKey(
        "raw",
        keyLength === 0 ? new Uint8Array(64) : key,
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["sign"],
      );
      const expected = new Uint8Array(await crypto.subtle.sign("HMAC", webKey, message));
      assert.deepEqual(hmacSha256(key, message), expected, `key ${keyLength}, message ${messageLength}`);
    }
  }
  // RFC 4231 test case 2.
  assert.equal(
    toHex(hmacSha256("Jefe", "what do ya want for nothing?")),
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
  );
});

Deno.test("toBase64Url", () => {
  assert.equal(toBase64Url(new Uint8Array([0xfb, 0xff, 0xfe])), "-__-");
  assert.equal(toBase64Url(new Uint8Array([1])), "AQ");
});

/**
 * @module
 * Small certificate authority helpers: create a CA, issue TLS serving certificates signed by it,
 * and read a certificate's validity. Used by the self-managed webhook certificate mode and by the
 * test world. ECDSA P-256 keeps generation fast (a few milliseconds) and is accepted by Go's and
 * rustls' TLS stacks alike.
 */
// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata polyfill first.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";

const ALGORITHM: EcKeyGenParams & EcdsaParams = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };

x509.cryptoProvider.set(crypto);

/** A certificate and its private key, both PEM-encoded. */
export interface KeyPair {
  readonly certPem: string;
  readonly keyPem: string;
}

/** Options for {@linkcode createCertificateAuthority}. */
export interface CaOptions {
  /** Subject common name. */
  commonName: string;
  /** Validity in days from now. @default 3650 */
  validityDays?: number;
  /** Start of validity; defaults to one minute ago to absorb clock skew. */
  notBefore?: Date;
}

/** Options for {@linkcode issueServingCertificate}. */
export interface ServingCertOptions {
  /** Subject common name; also the first DNS name. */
  commonName: string;
  /** DNS subject alternative names. */
  dnsNames?: readonly string[];
  /** IP subject alternative names. */
  ipAddresses?: readonly string[];
  /** Validity in days from now (fractions allowed). @default 365 */
  validityDays?: number;
  /** Start of validity; defaults to one minute ago to absorb clock skew. */
  notBefore?: Date;
  /** Adds the client-auth extended key usage too (for client certificates). @default false */
  clientAuth?: boolean;
}

function serialNumber(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function window(options: { notBefore?: Date | undefined; validityDays?: number | undefined }, days: number) {
  const notBefore = options.notBefore ?? new Date(Date.now() - 60_000);
  const notAfter = new Date(notBefore.getTime() + (options.validityDays ?? days) * 86_400_000);
  return { notBefore, notAfter };
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey("pkcs8", key);
  return `${x509.PemConverter.encode(der, "PRIVATE KEY")}\n`;
}

/** Creates a self-signed certificate authority. */
export async function createCertificateAuthority(options: CaOptions): Promise<KeyPair> {
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=${options.commonName}`,
    ...window(options, 3650),
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: `${cert.toString("pem")}\n`, keyPem: await exportKeyPem(keys.privateKey) };
}

async function importPrivateKey(pem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decodeFirst(pem);
  return await crypto.subtle.importKey("pkcs8", der, ALGORITHM, false, ["sign"]);
}

/** Issues a TLS serving certificate signed by `ca`. */
export async function issueServingCertificate(ca: KeyPair, options: ServingCertOptions): Promise<KeyPair> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await importPrivateKey(ca.keyPem);
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]);
  const dnsNames = [...new Set([options.commonName, ...(options.dnsNames ?? [])])]
    .filter((n) => !/^[0-9.]+$/.test(n) && !n.includes(":"));
  const names: x509.JsonGeneralName[] = [
    ...dnsNames.map((value) => ({ type: "dns" as const, value })),
    ...(options.ipAddresses ?? []).map((value) => ({ type: "ip" as const, value })),
  ];
  const usages = [x509.ExtendedKeyUsage.serverAuth];
  if (options.clientAuth) usages.push(x509.ExtendedKeyUsage.clientAuth);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${options.commonName}`,
    issuer: caCert.subject,
    ...window(options, 365),
    signingAlgorithm: ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension(usages),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { certPem: `${cert.toString("pem")}\n`, keyPem: await exportKeyPem(keys.privateKey) };
}

/** Validity window of the first certificate in a PEM bundle. */
export function certificateValidity(certPem: string): { notBefore: Date; notAfter: Date } {
  const cert = new x509.X509Certificate(certPem);
  return { notBefore: cert.notBefore, notAfter: cert.notAfter };
}

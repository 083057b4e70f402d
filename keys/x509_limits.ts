/**
 * The limit on X.509 files (certificates, private keys), apart from keys/x509.ts so that
 * reading a file up to it does not load pkijs (issue 12: the CLI loads X.509 support only
 * for a file that turns out to be a certificate).
 * @module
 */

/** Largest certificate or private-key file read (a long chain fits; SECURITY.md). */
export const MAX_X509_FILE = 256 * 1024;

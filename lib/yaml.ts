/** The one importer of the `yaml` package: what spec and image-description parsers use of it. */

export { isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
export type { Document, Node, Pair, YAMLMap } from 'yaml';

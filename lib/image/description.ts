/** Image descriptions (`NAME.yaml` beside `NAME.tar`): parse and validate the layers and config of an image. */

import { readFile } from 'node:fs/promises';
import { dirname, relative, resolve, sep } from 'node:path';
import { RedoError } from '../errors.js';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from '../yaml.js';
import { noCompression, parseLayerCompression, type LayerCompression } from './compress.js';
import type { ImageConfig } from './image-config.js';
import { architectures, envProblem, operatingSystems, portProblem, referenceProblem, userProblem, workingDirProblem } from './image-reference.js';

/**
 * A validated image description. The file looks like this (every field but `layers`
 * is optional):
 *
 *     tags: [localhost/hello:latest]     # RepoTags of the docker archive; first tag's
 *                                        # part after ':' is the OCI ref name
 *     architecture: amd64                # default amd64
 *     os: linux                          # default linux
 *     compression: none                  # layer blobs: none, gzip, zstd, gzip:LEVEL
 *                                        # (1-9, default 6) or zstd:LEVEL (1-19, default 3)
 *     gzip: false                        # true: the same as compression: gzip
 *     allowOverlap: false                # true: an upper layer may replace a lower
 *                                        # layer's file (default: an error naming both)
 *     platforms: [linux/amd64, linux/arm64]  # several: an OCI image index (replaces
 *                                        # architecture/os); "${arch}" in a layer path
 *                                        # is replaced by each platform's architecture
 *     base: registry.example/os@sha256:… # a pinned base image, below the layers
 *                                        # (a tag alone is refused; `redo-ts pin` adds
 *                                        # the digest: HOST/REPO:TAG@sha256:…)
 *     sbom: true                         # attach SPDX and CycloneDX SBOMs to the OCI
 *                                        # layout as artifacts (default true)
 *     audit: false                       # true: building NAME.tar fails on audit findings
 *     auditAllow: [setuid:/bin/su]       # findings to accept: KIND or KIND:/path
 *     allowVersionDifferences: [libssl3] # packages whose locked versions may differ between platforms
 *     allowMissingLibraries: false       # true: skip the check that every ELF file's
 *                                        # NEEDED libraries are in the image
 *     layers:                            # bottom first; each a tar target, relative
 *       - targets/busybox.fragment.tar   # to this file's folder
 *     config:
 *       entrypoint: [/usr/bin/hello]
 *       cmd: []
 *       env: [PATH=/usr/bin:/bin]
 *       workingDir: /
 *       user: "0:0"
 *       labels: {org.opencontainers.image.title: hello}
 *       exposedPorts: [8080/tcp]
 */
export interface ImageDescription {
  /** Absolute path of the description file. */
  path: string;
  tags: string[];
  /** The OCI layout's ref name: the first tag's version part, else "latest". */
  refName: string;
  /** Whether layers are gzip-compressed (compression.codec is gzip). */
  gzip: boolean;
  /** How layer blobs are stored (`compression:`, or `gzip: true`); default none. */
  compression: LayerCompression;
  /** Whether two layers may deliver one path (the upper one then hides the lower). */
  allowOverlap: boolean;
  /** Whether NAME.oci.tar carries the image's SBOMs as artifacts (default true). */
  hasSbom: boolean;
  /** Whether building NAME.tar runs the audit and fails on findings not allowed. */
  shouldAudit: boolean;
  /** Audit findings to accept: `KIND` or `KIND:/path` (see lib/inventory/audit.ts). */
  auditAllow: string[];
  /** Whether ELF files may need libraries the image lacks (the closure check is skipped). */
  allowMissingLibraries: boolean;
  /** Debian packages whose locked version may differ between the platforms of a multi-arch image. */
  allowVersionDifferences: string[];
  /** Layer targets, relative to the description's folder, bottom first. */
  layers: string[];
  /** The pinned base image reference (with its digest), whose layers go below `layers`. */
  base?: string;
  /** Platforms of a multi-arch image (`platforms:`), in the order written; absent for one. */
  platforms?: ImagePlatform[];
  config: ImageConfig;
}

const topFields = ['tags', 'architecture', 'os', 'platforms', 'compression', 'gzip', 'allowOverlap', 'allowMissingLibraries', 'allowVersionDifferences', 'sbom', 'audit', 'auditAllow', 'base', 'layers', 'config'];

/** One platform of a multi-arch image, e.g. linux/arm64/v8. */
export interface ImagePlatform {
  os: string;
  architecture: string;
  variant?: string;
}

/**
 * The layer targets and config of one platform of `description`: "${arch}" in layer
 * paths becomes the platform's architecture, and the config gets its os, architecture
 * and variant. Pure.
 */
export function imageForPlatform(description: ImageDescription, platform: ImagePlatform): { layers: string[]; config: ImageConfig } {
  const config: ImageConfig = { ...description.config, os: platform.os, architecture: platform.architecture };
  if (platform.variant !== undefined) config.variant = platform.variant;
  return { layers: description.layers.map((layer) => layer.split('${arch}').join(platform.architecture)), config };
}
const configFields = ['entrypoint', 'cmd', 'env', 'workingDir', 'user', 'labels', 'exposedPorts'];

/** The longest label value accepted: 64 KiB (a config is read whole by every client). */
export const MAX_LABEL_BYTES = 64 * 1024;

/** Why a string cannot be a program argument (entrypoint, cmd), or undefined. Pure. */
function argumentProblem(argument: string): string | undefined {
  return argument.includes('\0') ? `${JSON.stringify(argument)} holds a NUL byte, which no program argument can` : undefined;
}

/**
 * Reads and validates the image description at `path` (absolute). `root` is the
 * project root, used only to name the file in errors. Throws ERR_IMAGE_DESCRIPTION
 * with `file:line: field: problem` for unreadable YAML, unknown fields, wrong types,
 * a missing or empty `layers`, a layer path that leaves the project, a tag that is not
 * `NAME:TAG` by the distribution reference grammar, or a config value a client would
 * refuse (see image-reference.ts): the line is the offending item's own.
 */
export async function loadImageDescription(path: string, root: string): Promise<ImageDescription> {
  const shown = relative(root, path) || path;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new RedoError('ERR_IMAGE_DESCRIPTION', `redo: "${shown}": cannot read the image description`, {
      details: [String((error as Error).message)],
      hint: `create ${shown}: it lists the image's layers and its config`,
      cause: error,
    });
  }
  const lines = new LineCounter();
  const document = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const fail = (node: Node | null | undefined, field: string, problem: string): never => {
    const offset = node?.range?.[0];
    const line = offset === undefined ? 1 : lines.linePos(offset).line;
    throw new RedoError('ERR_IMAGE_DESCRIPTION', `redo: "${shown}": invalid image description`, {
      details: [`${shown}:${line}: ${field}: ${problem}`],
    });
  };
  if (document.errors.length > 0) {
    const first = document.errors[0]!;
    const line = lines.linePos(first.pos[0]).line;
    throw new RedoError('ERR_IMAGE_DESCRIPTION', `redo: "${shown}": invalid image description`, {
      details: [`${shown}:${line}: ${first.message.split('\n')[0]}`],
    });
  }
  const top = document.contents;
  if (!isMap(top)) return fail(top, '(top)', 'expected a mapping with at least `layers`');

  const fields = new Map<string, Node | null>();
  for (const pair of top.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : '';
    if (!topFields.includes(key)) fail(pair.key as Node, key, `unknown field (known: ${topFields.join(', ')})`);
    fields.set(key, (pair.value as Node | null) ?? null);
  }

  const text1 = (field: string, fallback: string, problemOf: (value: string) => string | undefined): string => {
    const node = fields.get(field);
    if (node === undefined) return fallback;
    if (!isScalar(node) || typeof node.value !== 'string' || node.value === '') return fail(node, field, 'expected a non-empty string');
    const problem = problemOf(node.value);
    if (problem !== undefined) fail(node, field, problem);
    return node.value;
  };
  // `user: 1000` or a label `version: 1.0` is a YAML number: say how to make it text.
  const notAString = (node: Node | null | undefined): string =>
    isScalar(node) && (typeof node.value === 'number' || typeof node.value === 'boolean') ? 'expected a string; YAML reads this as a number or boolean: put it in quotes' : 'expected a string';
  // Each item is checked where it stands, so the error gives that item's line.
  const strings = (node: Node | null | undefined, field: string, problemOf?: (value: string) => string | undefined): string[] => {
    if (node === undefined) return [];
    if (!isSeq(node)) return fail(node, field, 'expected a list of strings');
    return node.items.map((item) => {
      if (!isScalar(item) || typeof item.value !== 'string') return fail(item as Node, field, notAString(item as Node));
      const problem = problemOf?.(item.value);
      if (problem !== undefined) fail(item as Node, field, problem);
      return item.value;
    });
  };
  const oneOf = (known: readonly string[]) => (value: string): string | undefined =>
    known.includes(value) ? undefined : `"${value}" is not one of ${known.join(', ')}`;

  const tags = strings(fields.get('tags'), 'tags', referenceProblem);
  const flag = (field: string, fallback = false): boolean => {
    const node = fields.get(field);
    if (node === undefined) return fallback;
    if (!isScalar(node) || typeof node.value !== 'boolean') return fail(node, field, 'expected true or false');
    return node.value;
  };
  const gzipFlag = flag('gzip');
  const compressionNode = fields.get('compression');
  let compression: LayerCompression = gzipFlag ? { codec: 'gzip', level: 6 } : noCompression;
  if (compressionNode !== undefined) {
    if (fields.has('gzip')) fail(compressionNode, 'compression', 'give either compression or gzip, not both');
    if (!isScalar(compressionNode) || typeof compressionNode.value !== 'string') fail(compressionNode, 'compression', 'expected none, gzip, zstd, gzip:LEVEL or zstd:LEVEL');
    const parsed = parseLayerCompression((compressionNode as { value: string }).value);
    if (typeof parsed === 'string') fail(compressionNode, 'compression', parsed);
    compression = parsed as LayerCompression;
  }
  const gzip = compression.codec === 'gzip';
  const allowOverlap = flag('allowOverlap');
  const hasSbom = flag('sbom', true);
  const shouldAudit = flag('audit');
  const auditAllow = strings(fields.get('auditAllow'), 'auditAllow');

  const baseNode = fields.get('base');
  const base = baseNode === undefined ? undefined : text1('base', '', () => undefined);
  if (base !== undefined && !/@sha256:[0-9a-f]{64}$/.test(base)) {
    fail(baseNode, 'base', `"${base}" is not pinned by digest (HOST/REPOSITORY[:TAG]@sha256:…); run \`redo-ts pin ${shown}\` to add the digest the tag points at`);
  }

  const platformsNode = fields.get('platforms');
  let platforms: ImagePlatform[] | undefined;
  if (platformsNode !== undefined) {
    if (fields.has('architecture') || fields.has('os')) fail(platformsNode, 'platforms', 'give either platforms or architecture/os, not both');
    platforms = strings(platformsNode, 'platforms').map((text) => {
      const match = /^([a-z0-9]+)\/([a-z0-9_]+)(?:\/([a-z0-9]+))?$/.exec(text);
      if (match === null) return fail(platformsNode, 'platforms', `"${text}" is not OS/ARCHITECTURE[/VARIANT], e.g. linux/arm64`);
      return { os: match[1]!, architecture: match[2]!, ...(match[3] === undefined ? {} : { variant: match[3] }) };
    });
    if (platforms.length === 0) fail(platformsNode, 'platforms', 'name at least one platform');
    const seen = new Set(platforms.map((p) => `${p.os}/${p.architecture}/${p.variant ?? ''}`));
    if (seen.size !== platforms.length) fail(platformsNode, 'platforms', 'a platform is listed twice');
  }
  const allowMissingLibraries = flag('allowMissingLibraries');
  const allowVersionDifferences = strings(fields.get('allowVersionDifferences'), 'allowVersionDifferences');

  const layersNode = fields.get('layers');
  const layers = strings(layersNode, 'layers');
  if (layers.length === 0) fail(layersNode ?? top, 'layers', 'an image needs at least one layer');
  const folder = dirname(path);
  for (const layer of layers) {
    const rel = relative(root, resolve(folder, layer));
    if (rel.startsWith(`..${sep}`) || rel === '..' || resolve(folder, layer) === resolve(root)) {
      fail(layersNode, 'layers', `"${layer}" is outside the project`);
    }
  }

  // A multi-arch description's own config is its first platform's.
  const first = platforms?.[0];
  const config: ImageConfig = first !== undefined
    ? { architecture: first.architecture, os: first.os, ...(first.variant === undefined ? {} : { variant: first.variant }) }
    : { architecture: text1('architecture', 'amd64', oneOf(architectures)), os: text1('os', 'linux', oneOf(operatingSystems)) };
  const configNode = fields.get('config');
  if (configNode !== undefined && configNode !== null) {
    if (!isMap(configNode)) fail(configNode, 'config', 'expected a mapping');
    else {
      for (const pair of configNode.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : '';
        const value = (pair.value as Node | null) ?? null;
        const field = `config.${key}`;
        switch (key) {
          case 'entrypoint':
            config.entrypoint = strings(value, field, argumentProblem);
            break;
          case 'cmd':
            config.cmd = strings(value, field, argumentProblem);
            break;
          case 'env':
            config.env = strings(value, field, envProblem);
            break;
          case 'exposedPorts':
            config.exposedPorts = strings(value, field, portProblem);
            break;
          case 'workingDir':
          case 'user': {
            if (!isScalar(value) || typeof value.value !== 'string') fail(value, field, notAString(value));
            else {
              const problem = (key === 'user' ? userProblem : workingDirProblem)(value.value);
              if (problem !== undefined) fail(value, field, problem);
              config[key] = value.value;
            }
            break;
          }
          case 'labels': {
            if (!isMap(value)) {
              fail(value, field, 'expected a mapping of strings');
              break;
            }
            const labels: Record<string, string> = {};
            for (const label of value.items) {
              const name = isScalar(label.key) ? String(label.key.value) : '';
              if (name === '') fail(label.key as Node, field, 'a label needs a non-empty name');
              if (/[\x00-\x1f\x7f]/.test(name)) fail(label.key as Node, field, `the label name ${JSON.stringify(name)} holds a control character (a line break?)`);
              const labelValue = label.value as Node | null;
              if (!isScalar(labelValue) || typeof labelValue.value !== 'string') fail(labelValue, `${field}.${name}`, notAString(labelValue));
              else {
                if (labelValue.value.includes('\0')) fail(labelValue, `${field}.${name}`, 'the value holds a NUL byte');
                const sizeBytes = Buffer.byteLength(labelValue.value);
                if (sizeBytes > MAX_LABEL_BYTES) fail(labelValue, `${field}.${name}`, `the value is ${sizeBytes} bytes; a label holds at most ${MAX_LABEL_BYTES} (put large data in a file of a layer)`);
                labels[name] = labelValue.value;
              }
            }
            config.labels = labels;
            break;
          }
          default:
            fail(pair.key as Node, field, `unknown field (known: ${configFields.join(', ')})`);
        }
      }
    }
  }
  config.history = layers.map((layer) => `redo-ts: layer ${layer}`);

  const firstTag = tags[0];
  const tagPart = firstTag === undefined ? undefined : /:([^:/]+)$/.exec(firstTag)?.[1];
  return { path, tags, refName: tagPart ?? 'latest', gzip, compression, allowOverlap, allowMissingLibraries, allowVersionDifferences, hasSbom, shouldAudit, auditAllow, layers, config, ...(base === undefined ? {} : { base }), ...(platforms === undefined ? {} : { platforms }) };
}

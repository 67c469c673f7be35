/** Image descriptions (`NAME.yaml` beside `NAME.tar`): parse and validate the layers and config of an image. */

import { readFile } from 'node:fs/promises';
import { dirname, relative, resolve, sep } from 'node:path';
import { RedoError } from '../errors.js';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from '../yaml.js';
import type { ImageConfig } from './image-config.js';

/**
 * A validated image description. The file looks like this (every field but `layers`
 * is optional):
 *
 *     tags: [localhost/hello:latest]     # RepoTags of the docker archive; first tag's
 *                                        # part after ':' is the OCI ref name
 *     architecture: amd64                # default amd64
 *     os: linux                          # default linux
 *     gzip: false                        # store layers gzip-compressed (pinned header)
 *     allowOverlap: false                # true: an upper layer may replace a lower
 *                                        # layer's file (default: an error naming both)
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
  gzip: boolean;
  /** Whether two layers may deliver one path (the upper one then hides the lower). */
  allowOverlap: boolean;
  /** Whether ELF files may need libraries the image lacks (the closure check is skipped). */
  allowMissingLibraries: boolean;
  /** Layer targets, relative to the description's folder, bottom first. */
  layers: string[];
  config: ImageConfig;
}

const topFields = ['tags', 'architecture', 'os', 'gzip', 'allowOverlap', 'allowMissingLibraries', 'layers', 'config'];
const configFields = ['entrypoint', 'cmd', 'env', 'workingDir', 'user', 'labels', 'exposedPorts'];

/**
 * Reads and validates the image description at `path` (absolute). `root` is the
 * project root, used only to name the file in errors. Throws ERR_IMAGE_DESCRIPTION
 * with `file:line: field: problem` for unreadable YAML, unknown fields, wrong types,
 * a missing or empty `layers`, or a layer path that leaves the project.
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

  const text1 = (field: string, fallback: string): string => {
    const node = fields.get(field);
    if (node === undefined) return fallback;
    if (!isScalar(node) || typeof node.value !== 'string' || node.value === '') return fail(node, field, 'expected a non-empty string');
    return node.value;
  };
  const strings = (node: Node | null | undefined, field: string): string[] => {
    if (node === undefined) return [];
    if (!isSeq(node)) return fail(node, field, 'expected a list of strings');
    return node.items.map((item) => {
      if (!isScalar(item) || typeof item.value !== 'string') return fail(item as Node, field, 'expected a string');
      return item.value;
    });
  };

  const tags = strings(fields.get('tags'), 'tags');
  const flag = (field: string): boolean => {
    const node = fields.get(field);
    if (node === undefined) return false;
    if (!isScalar(node) || typeof node.value !== 'boolean') return fail(node, field, 'expected true or false');
    return node.value;
  };
  const gzip = flag('gzip');
  const allowOverlap = flag('allowOverlap');
  const allowMissingLibraries = flag('allowMissingLibraries');

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

  const config: ImageConfig = { architecture: text1('architecture', 'amd64'), os: text1('os', 'linux') };
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
            config.entrypoint = strings(value, field);
            break;
          case 'cmd':
            config.cmd = strings(value, field);
            break;
          case 'env':
            config.env = strings(value, field);
            for (const entry of config.env) if (!entry.includes('=')) fail(value, field, `"${entry}" is not NAME=VALUE`);
            break;
          case 'exposedPorts':
            config.exposedPorts = strings(value, field);
            break;
          case 'workingDir':
          case 'user': {
            if (!isScalar(value) || typeof value.value !== 'string') fail(value, field, 'expected a string');
            else config[key] = value.value;
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
              const labelValue = label.value as Node | null;
              if (!isScalar(labelValue) || typeof labelValue.value !== 'string') fail(labelValue, `${field}.${name}`, 'expected a string');
              else labels[name] = labelValue.value;
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
  return { path, tags, refName: tagPart ?? 'latest', gzip, allowOverlap, allowMissingLibraries, layers, config };
}

/** The CycloneDX 1.6 JSON document of an image inventory. */

import type { Inventory, InventoryFile, InventoryPackage } from './inventory.js';
import { imageIdHex, nonHermeticSpecs } from './inventory.js';
import { checksumOfIntegrity, contentFiles, deliverers, isoTime, originKey, type SbomOptions } from './spdx.js';

type Json = Record<string, unknown>;

/** CycloneDX hash algorithm names for SRI ones. */
const hashNames: Record<string, string> = { SHA256: 'SHA-256', SHA384: 'SHA-384', SHA512: 'SHA-512' };

/** A name-based UUID (version 5 layout) from the image digest: the same image, the same serial number. */
export function serialNumberOf(inventory: Inventory): string {
  const hex = imageIdHex(inventory).slice(0, 32).split('');
  hex[12] = '5';
  hex[16] = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  const text = hex.join('');
  return `urn:uuid:${text.slice(0, 8)}-${text.slice(8, 12)}-${text.slice(12, 16)}-${text.slice(16, 20)}-${text.slice(20, 32)}`;
}

/**
 * The CycloneDX 1.6 JSON BOM for `inventory`, as text ending in a newline. The image is
 * `metadata.component` (type container, version = config digest); each Debian package
 * a `library` component (purl, the .deb's hash, licence expression when its copyright
 * file is machine-readable); each spec an `application` whose pinned sources are its
 * `pedigree.ancestors`; project folders and unknown targets `data` components. Every
 * regular file of every layer is a nested `file` component (SHA-1, SHA-256, layer) of
 * whatever delivered it. `dependencies` gives the image's direct components and each
 * package's and spec's run-time dependencies. serialNumber derives from the image
 * digest and the timestamp from `options.createdSeconds`. Pure.
 */
export function cyclonedxDocument(inventory: Inventory, options: SbomOptions): string {
  const filesOf = new Map<string, InventoryFile[]>();
  for (const file of contentFiles(inventory)) {
    const key = originKey(file.origin);
    filesOf.set(key, [...(filesOf.get(key) ?? []), file]);
  }
  const fileComponents = (key: string): Json => {
    const own = filesOf.get(key) ?? [];
    if (own.length === 0) return {};
    return {
      components: own.map((file) => ({
        type: 'file',
        'bom-ref': `file:${file.layer}:${file.path}`,
        name: file.path,
        hashes: [
          { alg: 'SHA-1', content: file.sha1Hex },
          { alg: 'SHA-256', content: file.sha256Hex },
        ],
        properties: [
          { name: 'redo-ts:layer', value: inventory.layers[file.layer]!.target },
          { name: 'redo-ts:mode', value: file.mode.toString(8).padStart(4, '0') },
          ...(file.origin.kind === 'folder' ? [{ name: 'redo-ts:project-path', value: file.origin.projectPath }] : []),
        ],
      })),
    };
  };

  const components: Json[] = [];
  for (const item of inventory.packages) components.push(packageComponent(item, fileComponents(item.key)));
  for (const deliverer of deliverers(inventory)) {
    const spec = deliverer.kind === 'spec' ? inventory.specs.find((candidate) => `spec:${candidate.path}` === deliverer.key)! : undefined;
    const ancestors = (spec?.sources ?? [])
      .filter((source) => source.kind !== 'deb')
      .map((source) => {
        const checksum = checksumOfIntegrity(source.integrity);
        return {
          type: 'file',
          'bom-ref': `source:${spec!.path}:${source.role}:${source.url}`,
          name: source.name,
          version: source.version,
          ...(checksum !== undefined && hashNames[checksum.algorithm] !== undefined ? { hashes: [{ alg: hashNames[checksum.algorithm], content: checksum.hex }] } : {}),
          ...(/^https?:/.test(source.url) ? { externalReferences: [{ type: 'distribution', url: source.url }] } : {}),
          properties: [
            { name: 'redo-ts:url', value: source.url },
            { name: 'redo-ts:role', value: source.role },
            { name: 'redo-ts:pinned', value: source.isProjectFile ? 'false (project file)' : 'true' },
          ],
        };
      });
    components.push({
      type: deliverer.kind === 'spec' ? 'application' : 'data',
      'bom-ref': deliverer.key,
      name: deliverer.name,
      ...(deliverer.version !== undefined ? { version: deliverer.version } : {}),
      ...(spec?.description !== undefined ? { description: spec.description } : {}),
      ...(ancestors.length > 0 ? { pedigree: { ancestors } } : {}),
      properties: [
        {
          name: 'redo-ts:provenance',
          value:
            deliverer.kind === 'spec'
              ? `built from the spec ${spec!.path}`
              : deliverer.kind === 'folder'
                ? `copied from the project folder ${deliverer.name}`
                : `the tar target ${deliverer.name}; no provenance known`,
        },
      ],
      ...fileComponents(deliverer.key),
    });
  }

  const imageRef = `image:${inventory.configDigest}`;
  const direct = new Set(contentFiles(inventory).map((file) => originKey(file.origin)));
  for (const item of inventory.packages) if (item.isDelivered) direct.add(item.key);
  const dependencies: Json[] = [{ ref: imageRef, dependsOn: [...direct].sort() }];
  for (const item of inventory.packages) dependencies.push({ ref: item.key, dependsOn: item.dependsOn });
  for (const spec of inventory.specs) {
    const known = new Set(inventory.specs.map((candidate) => candidate.path));
    dependencies.push({ ref: `spec:${spec.path}`, dependsOn: spec.requires.filter((path) => known.has(path)).map((path) => `spec:${path}`) });
  }

  const bom: Json = {
    $schema: 'http://cyclonedx.org/schema/bom-1.6.schema.json',
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    serialNumber: serialNumberOf(inventory),
    version: 1,
    metadata: {
      timestamp: isoTime(options.createdSeconds),
      lifecycles: [{ phase: 'build' }],
      tools: { components: [{ type: 'application', name: 'redo-ts' }] },
      component: {
        type: 'container',
        'bom-ref': imageRef,
        name: inventory.name,
        version: inventory.configDigest,
        properties: [
          { name: 'redo-ts:description', value: inventory.description },
          ...inventory.layers.map((layer, index) => ({ name: `redo-ts:layer:${index}`, value: `${layer.target} ${layer.diffId}` })),
          // Only where it is so: a spec whose build steps used the builder's own tools.
          ...nonHermeticSpecs(inventory).map((spec) => ({ name: 'redo-ts:not-hermetic', value: `${spec}: build-environment: host` })),
        ],
      },
    },
    components,
    dependencies,
  };
  return `${JSON.stringify(bom, null, 2)}\n`;
}

function packageComponent(item: InventoryPackage, files: Json): Json {
  const checksum = checksumOfIntegrity(item.integrity);
  return {
    type: 'library',
    'bom-ref': item.key,
    ...(item.maintainer !== undefined ? { supplier: { name: item.maintainer } } : {}),
    name: item.name,
    version: item.version,
    ...(item.summary !== undefined ? { description: item.summary } : {}),
    scope: item.isDelivered ? 'required' : 'excluded',
    ...(checksum !== undefined && hashNames[checksum.algorithm] !== undefined ? { hashes: [{ alg: hashNames[checksum.algorithm], content: checksum.hex }] } : {}),
    ...(item.licence.expression !== 'NOASSERTION' ? { licenses: [{ expression: item.licence.expression }] } : {}),
    purl: item.purl,
    ...(item.homepage !== undefined && /^https?:\/\//.test(item.homepage) ? { externalReferences: [{ type: 'website', url: item.homepage }] } : {}),
    properties: [
      { name: 'redo-ts:url', value: item.url },
      { name: 'redo-ts:specs', value: item.specs.join(' ') },
      { name: 'redo-ts:licence-evidence', value: item.licence.evidence },
    ],
    ...files,
  };
}

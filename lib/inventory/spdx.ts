/** The SPDX 2.3 JSON document of an image inventory. */

import { createHash, hash } from 'node:crypto';
import type { FileOrigin, Inventory, InventoryFile, InventoryPackage } from './inventory.js';
import { imageIdHex, nonHermeticSpecs } from './inventory.js';

/** Options for spdxDocument. */
export interface SbomOptions {
  /** The document's creation time, seconds since the epoch: SOURCE_DATE_EPOCH, else 0 (never the clock). */
  createdSeconds: number;
}

type Json = Record<string, unknown>;

/** ISO 8601 UTC without fractions, as SPDX and CycloneDX write times. */
export function isoTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** An SPDX idstring: letters, digits, `.` and `-`, with a short hash of `key` so distinct keys stay distinct. */
export function spdxId(kind: string, label: string, key: string): string {
  const clean = label.replace(/[^A-Za-z0-9.-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60);
  return `SPDXRef-${kind}-${clean}${clean === '' ? '' : '-'}${hash('sha256', key, 'hex').slice(0, 12)}`;
}

/** Hex digest and SPDX algorithm name of an SRI integrity (`sha256-BASE64`), or undefined. */
export function checksumOfIntegrity(integrity: string | undefined): { algorithm: string; hex: string } | undefined {
  const match = /^(sha256|sha384|sha512)-([A-Za-z0-9+/=]+)$/.exec(integrity ?? '');
  if (match === null) return undefined;
  return { algorithm: match[1]!.toUpperCase(), hex: Buffer.from(match[2]!, 'base64').toString('hex') };
}

/** The key of the SBOM element a file's origin names. */
export function originKey(origin: FileOrigin): string {
  switch (origin.kind) {
    case 'package':
      return origin.package;
    case 'spec':
      return `spec:${origin.spec}`;
    case 'folder':
      return `folder:${origin.folder}`;
    case 'target':
      return `target:${origin.target}`;
    default: {
      const never: never = origin;
      return never;
    }
  }
}

/** Files that carry content (regular files and hardlinks, not whiteouts): the ones an SBOM lists with checksums. */
export function contentFiles(inventory: Inventory): InventoryFile[] {
  // OCI whiteouts (`.wh.NAME`) mark deletions; they are not files of the image.
  return inventory.files.filter((file) => file.sha256Hex !== undefined && !file.path.slice(file.path.lastIndexOf('/') + 1).startsWith('.wh.'));
}

/** Elements other than packages that deliver files: specs' builds, project folders, targets of unknown provenance. */
export function deliverers(inventory: Inventory): Array<{ key: string; kind: 'spec' | 'folder' | 'target'; name: string; version?: string }> {
  const out = new Map<string, { key: string; kind: 'spec' | 'folder' | 'target'; name: string; version?: string }>();
  for (const spec of inventory.specs) out.set(`spec:${spec.path}`, { key: `spec:${spec.path}`, kind: 'spec', name: spec.name, version: spec.version });
  for (const file of inventory.files) {
    if (file.origin.kind === 'folder') out.set(originKey(file.origin), { key: originKey(file.origin), kind: 'folder', name: file.origin.folder });
    if (file.origin.kind === 'target') out.set(originKey(file.origin), { key: originKey(file.origin), kind: 'target', name: file.origin.target });
  }
  return [...out.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * The SPDX 2.3 JSON document for `inventory`, as text ending in a newline. Contents:
 * the image as a CONTAINER package the document DESCRIBES; each Debian package (name,
 * version, purl, the .deb's checksum, its declared licence from a machine-readable
 * copyright file or NOASSERTION); each spec, project folder or unknown target that
 * delivered files; each pinned source of a spec (checksum from its pin); every regular
 * file of every layer with SHA1 and SHA256; relationships: image CONTAINS delivering
 * package, package CONTAINS file, package DEPENDS_ON package, spec DEPENDS_ON required
 * spec, spec GENERATED_FROM source, build-only package or spec BUILD_DEPENDENCY_OF spec.
 * The namespace derives from the image's config digest and `created` from
 * `options.createdSeconds`, so one image gives one byte sequence. Pure.
 */
export function spdxDocument(inventory: Inventory, options: SbomOptions): string {
  const idHex = imageIdHex(inventory);
  const imageId = 'SPDXRef-Image';
  const ids = new Map<string, string>();
  const packages: Json[] = [];
  const files: Json[] = [];
  const relationships: Json[] = [];
  const relate = (from: string, type: string, to: string): void => {
    relationships.push({ spdxElementId: from, relationshipType: type, relatedSpdxElement: to });
  };
  const content = contentFiles(inventory);
  const filesOf = new Map<string, InventoryFile[]>();
  for (const file of content) {
    const key = originKey(file.origin);
    filesOf.set(key, [...(filesOf.get(key) ?? []), file]);
  }
  const analysed = (key: string): Json => {
    const own = filesOf.get(key) ?? [];
    if (own.length === 0) return { filesAnalyzed: false };
    // SPDX 2.3 §7.9: SHA1 of the sorted, concatenated SHA1s of the package's files.
    const code = createHash('sha1').update(own.map((file) => file.sha1Hex!).sort().join('')).digest('hex');
    return { filesAnalyzed: true, packageVerificationCode: { packageVerificationCodeValue: code } };
  };

  packages.push({
    SPDXID: imageId,
    name: inventory.name,
    versionInfo: inventory.configDigest,
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    primaryPackagePurpose: 'CONTAINER',
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: 'NOASSERTION',
    copyrightText: 'NOASSERTION',
    comment: `Image described by ${inventory.description}, ${inventory.os}/${inventory.architecture}, layers bottom first: ${inventory.layers.map((layer) => `${layer.target} ${layer.diffId}`).join(', ')}`,
  });

  for (const item of inventory.packages) {
    const id = spdxId('Package', `${item.name}-${item.version}`, item.key);
    ids.set(item.key, id);
    packages.push(debPackage(item, id, analysed(item.key)));
  }
  for (const deliverer of deliverers(inventory)) {
    const id = spdxId(deliverer.kind === 'spec' ? 'Spec' : deliverer.kind === 'folder' ? 'Folder' : 'Target', deliverer.name, deliverer.key);
    ids.set(deliverer.key, id);
    const spec = deliverer.kind === 'spec' ? inventory.specs.find((item) => `spec:${item.path}` === deliverer.key) : undefined;
    const element: Json = {
      SPDXID: id,
      name: deliverer.name,
      ...(deliverer.version !== undefined ? { versionInfo: deliverer.version } : {}),
      downloadLocation: 'NOASSERTION',
      ...analysed(deliverer.key),
      primaryPackagePurpose: deliverer.kind === 'spec' ? 'APPLICATION' : 'OTHER',
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: 'NOASSERTION',
      copyrightText: 'NOASSERTION',
      sourceInfo:
        deliverer.kind === 'spec'
          ? `built by redo-ts from the spec ${spec!.path}`
          : deliverer.kind === 'folder'
            ? `copied from the project folder ${deliverer.name} by a layer list`
            : `the tar target ${deliverer.name}; redo-ts has no provenance for its members`,
    };
    if (spec?.description !== undefined) element['description'] = spec.description;
    packages.push(element);
  }
  for (const spec of inventory.specs) {
    for (const source of spec.sources) {
      if (source.kind === 'deb') continue;
      const key = `source:${spec.path}:${source.role}:${source.url}`;
      const id = spdxId('Source', source.name, key);
      ids.set(key, id);
      const checksum = checksumOfIntegrity(source.integrity);
      packages.push({
        SPDXID: id,
        name: source.name,
        versionInfo: source.version,
        downloadLocation: /^https?:/.test(source.url) ? source.url : 'NOASSERTION',
        filesAnalyzed: false,
        ...(checksum !== undefined ? { checksums: [{ algorithm: checksum.algorithm, checksumValue: checksum.hex }] } : {}),
        primaryPackagePurpose: 'SOURCE',
        licenseConcluded: 'NOASSERTION',
        licenseDeclared: 'NOASSERTION',
        copyrightText: 'NOASSERTION',
        sourceInfo: `${source.role} ${source.url} of ${spec.path}${source.isProjectFile ? ' (a project file, not pinned: its sha256 at SBOM time)' : ', checked against its pin'}`,
      });
      relate(ids.get(`spec:${spec.path}`)!, source.role === 'patch' ? 'PATCH_APPLIED' : 'GENERATED_FROM', id);
    }
  }

  for (const file of content) {
    const id = spdxId('File', `L${file.layer}${file.path}`, `${file.layer}:${file.path}`);
    files.push({
      SPDXID: id,
      fileName: `.${file.path}`,
      checksums: [
        { algorithm: 'SHA1', checksumValue: file.sha1Hex },
        { algorithm: 'SHA256', checksumValue: file.sha256Hex },
      ],
      licenseConcluded: 'NOASSERTION',
      copyrightText: 'NOASSERTION',
      comment: `layer ${file.layer} (${inventory.layers[file.layer]!.target})${file.origin.kind === 'folder' ? `, from ${file.origin.projectPath}` : ''}`,
    });
    relate(ids.get(originKey(file.origin))!, 'CONTAINS', id);
  }

  relate('SPDXRef-DOCUMENT', 'DESCRIBES', imageId);
  const delivering = new Set(content.map((file) => originKey(file.origin)));
  for (const item of inventory.packages) if (item.isDelivered) delivering.add(item.key);
  for (const key of [...delivering].sort()) relate(imageId, 'CONTAINS', ids.get(key)!);
  for (const item of inventory.packages) {
    for (const dependency of item.dependsOn) relate(ids.get(item.key)!, 'DEPENDS_ON', ids.get(dependency)!);
  }
  for (const spec of inventory.specs) {
    const specId = ids.get(`spec:${spec.path}`)!;
    for (const required of spec.requires) if (ids.has(`spec:${required}`)) relate(specId, 'DEPENDS_ON', ids.get(`spec:${required}`)!);
    for (const required of spec.buildRequires) if (ids.has(`spec:${required}`)) relate(ids.get(`spec:${required}`)!, 'BUILD_DEPENDENCY_OF', specId);
    for (const key of spec.packages) {
      const item = inventory.packages.find((candidate) => candidate.key === key)!;
      if (!item.isDelivered) relate(ids.get(key)!, 'BUILD_DEPENDENCY_OF', specId);
    }
  }

  const refs = new Map<string, Json>();
  for (const item of inventory.packages) {
    for (const ref of item.licence.refs) {
      if (!refs.has(ref.id)) refs.set(ref.id, { licenseId: ref.id, name: ref.name, extractedText: ref.text, comment: `named in ${item.licence.evidence} of ${item.name}` });
    }
  }
  const notHermetic = nonHermeticSpecs(inventory);
  const document: Json = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: inventory.name,
    documentNamespace: `https://spdx.org/spdxdocs/redo-ts/${inventory.name.replace(/[^A-Za-z0-9._-]+/g, '-')}-${idHex}`,
    creationInfo: {
      created: isoTime(options.createdSeconds),
      creators: ['Tool: redo-ts'],
      comment: `Built from the pins, specs and package metadata of the project, not from a scan. Image config digest ${inventory.configDigest}.${notHermetic.length > 0 ? ` NOT HERMETIC: the build steps of ${notHermetic.join(', ')} ran with the build machine's own tools (build-environment: host), so another machine may build other bytes.` : ''}`,
    },
    documentDescribes: [imageId],
    packages,
    files,
    ...(refs.size > 0 ? { hasExtractedLicensingInfos: [...refs.keys()].sort().map((id) => refs.get(id)!) } : {}),
    relationships,
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}

function debPackage(item: InventoryPackage, id: string, analysed: Json): Json {
  const checksum = checksumOfIntegrity(item.integrity);
  const element: Json = {
    SPDXID: id,
    name: item.name,
    versionInfo: item.version,
    ...(item.ecosystem === undefined ? { packageFileName: `${item.name}_${item.version.replace(/^[0-9]+:/, '')}_${item.architecture}.deb` } : {}),
    downloadLocation: item.ecosystem === 'npm' && /^https?:\/\//.test(item.url) ? item.url : 'NOASSERTION',
    ...analysed,
    ...(checksum !== undefined ? { checksums: [{ algorithm: checksum.algorithm, checksumValue: checksum.hex }] } : {}),
    externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: item.purl }],
    primaryPackagePurpose: 'INSTALL',
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: item.licence.expression,
    licenseComments: `declared licence from ${item.licence.evidence}`,
    copyrightText: 'NOASSERTION',
    sourceInfo: `${item.ecosystem === 'npm' ? 'npm package' : item.ecosystem === 'pypi' ? 'PyPI package' : 'Debian package'} ${item.url} named by ${item.specs.join(', ')}${item.isDelivered ? '' : ' (a build input: its files are not delivered)'}`,
  };
  if (item.homepage !== undefined) element['homepage'] = item.homepage;
  if (item.summary !== undefined) element['summary'] = item.summary;
  if (item.maintainer !== undefined) {
    const kind = /team|maintainers|group|project/i.test(item.maintainer) ? 'Organization' : 'Person';
    element['supplier'] = `${kind}: ${item.maintainer.replace(/\s*<([^>]*)>\s*$/, ' ($1)')}`;
  }
  return element;
}

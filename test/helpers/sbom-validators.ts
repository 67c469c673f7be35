// Checks SBOMs with the formats' own tools: CycloneDX with the CycloneDX project's
// library and its JSON validator; SPDX 2.3 with ajv against the SPDX project's published
// JSON schema (test/fixtures/schemas/spdx-schema-2-3.json), plus the rules of the SPDX 2.3
// specification the schema cannot express.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import Ajv from 'ajv';
import parseSpdxExpression from 'spdx-expression-parse';
import { repoRoot } from './rig.js';

/** Problems the CycloneDX library's strict JSON validator finds in `text` for spec 1.6; [] when valid. */
export async function cycloneDxProblems(text: string): Promise<string[]> {
  const validator = new Validation.JsonStrictValidator(Spec.Version.v1dot6);
  const errors = await validator.validate(text);
  return errors === null ? [] : [JSON.stringify(errors)];
}

let spdxSchemaValidator: ReturnType<Ajv['compile']> | undefined;

/** Licence expressions SPDX allows in licence fields: NONE, NOASSERTION, or one spdx-expression-parse accepts. */
function isLicenceField(value: unknown): boolean {
  if (value === 'NONE' || value === 'NOASSERTION') return true;
  if (typeof value !== 'string') return false;
  try {
    parseSpdxExpression(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * Problems with the SPDX 2.3 JSON document `text`: ajv errors against the published
 * schema, then the specification's own rules: unique SPDXIDs of the idstring form;
 * every referenced SPDXID defined; every file with a SHA1 checksum; licence fields valid
 * SPDX expressions whose LicenseRefs are defined in hasExtractedLicensingInfos; a
 * package verification code when files were analysed; a namespace URI without `#`.
 */
export function spdxProblems(text: string): string[] {
  const document = JSON.parse(text) as Record<string, any>;
  if (spdxSchemaValidator === undefined) {
    const schema = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/schemas/spdx-schema-2-3.json'), 'utf8'));
    spdxSchemaValidator = new Ajv({ strict: false, allErrors: true }).compile(schema);
  }
  const problems: string[] = [];
  if (!spdxSchemaValidator(document)) {
    problems.push(...(spdxSchemaValidator.errors ?? []).map((error) => `schema: ${error.instancePath} ${error.message}`));
  }
  if (document.spdxVersion !== 'SPDX-2.3') problems.push(`spdxVersion is ${document.spdxVersion}`);
  if (document.dataLicense !== 'CC0-1.0') problems.push('dataLicense must be CC0-1.0');
  if (typeof document.documentNamespace !== 'string' || !/^[a-z][a-z0-9+.-]*:\S+$/.test(document.documentNamespace) || document.documentNamespace.includes('#')) {
    problems.push(`documentNamespace is not a URI without "#": ${document.documentNamespace}`);
  }
  const defined = new Set<string>(['SPDXRef-DOCUMENT']);
  const elements = [...(document.packages ?? []), ...(document.files ?? [])];
  for (const element of elements) {
    if (!/^SPDXRef-[A-Za-z0-9.-]+$/.test(element.SPDXID)) problems.push(`bad SPDXID ${element.SPDXID}`);
    if (defined.has(element.SPDXID)) problems.push(`SPDXID defined twice: ${element.SPDXID}`);
    defined.add(element.SPDXID);
  }
  const referenced = [
    ...(document.documentDescribes ?? []),
    ...(document.relationships ?? []).flatMap((r: any) => [r.spdxElementId, r.relatedSpdxElement]),
    ...(document.packages ?? []).flatMap((p: any) => p.hasFiles ?? []),
  ];
  for (const id of referenced) if (!defined.has(id) && id !== 'NONE' && id !== 'NOASSERTION') problems.push(`SPDXID referenced but not defined: ${id}`);
  for (const file of document.files ?? []) {
    if (!(file.checksums ?? []).some((c: any) => c.algorithm === 'SHA1' && /^[0-9a-f]{40}$/.test(c.checksumValue))) problems.push(`file ${file.fileName} has no SHA1 checksum`);
  }
  const refsDefined = new Set((document.hasExtractedLicensingInfos ?? []).map((info: any) => info.licenseId));
  const licenceValues: Array<[string, unknown]> = [];
  for (const element of elements) {
    for (const field of ['licenseConcluded', 'licenseDeclared']) if (field in element) licenceValues.push([`${element.SPDXID}.${field}`, element[field]]);
    for (const value of element.licenseInfoInFiles ?? element.licenseInfoFromFiles ?? []) licenceValues.push([`${element.SPDXID}.licenseInfo`, value]);
  }
  for (const [where, value] of licenceValues) {
    if (!isLicenceField(value)) problems.push(`${where}: not a valid SPDX licence expression: ${String(value)}`);
    for (const ref of String(value).match(/LicenseRef-[A-Za-z0-9.-]+/g) ?? []) if (!refsDefined.has(ref)) problems.push(`${where}: ${ref} is not in hasExtractedLicensingInfos`);
  }
  for (const pkg of document.packages ?? []) {
    if (pkg.filesAnalyzed !== false && pkg.packageVerificationCode === undefined) problems.push(`package ${pkg.SPDXID} analysed files but has no packageVerificationCode`);
  }
  return problems;
}

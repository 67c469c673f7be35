/** The public API of redo-ts: documented re-exports only, no logic. */

export { RedoError, InternalError, isRedoError, errorCatalog, exitCodes } from './errors.js';
export type { ErrorCode, RedoErrorOptions } from './errors.js';

// The redo engine: builds, rule context for `.do.ts` rules, build events, recorded graph.
export type { RuleContext } from './cli/ts-rules.js';
export { Engine, describeReason, explainTarget, listOutOfDate, listSources, listTargets, listTransitiveSources } from './engine/index.js';
export { findRule, candidateNames, findProjectRoot, toTargetPath, STATE_VERSION } from './engine/index.js';
export type { EngineOptions, BuildSummary, BuildEvent, BuildEventListener, RebuildReason, Explanation } from './engine/index.js';
export type { FoundRule, RuleLookup, RuleKind, RuleFunction, TypeScriptRuleSupport } from './engine/index.js';
export type { TargetCache, CacheLookup, CacheHit, CacheOffer, CachedDependency } from './engine/index.js';

// Layers and images: deterministic tar writing/reading, digests.
export { writeTar, readTar, indexTar, entriesOfTar, entriesFromFacts, entriesToFacts, normaliseEntries, mtimeFromEnvironment } from './image/tar.js';
export type { WriteTarOptions, TarResult, ReadTarEntry, ReadTarOptions, IndexedMember, EntryFact } from './image/tar.js';
export { toMemberPath, comparePaths, pathText } from './image/tar-header.js';
export type { TarEntry, TarEntryType, TarContent, TarHeaderFields } from './image/tar-header.js';
export { toSha256Digest, digestHex, digestBytes, digestFile } from './image/digest.js';
export type { Sha256Digest } from './image/digest.js';
export { collectEntries } from './image/entries.js';
export type { CollectOptions } from './image/entries.js';
export { parseMetadata, readMetadataFile, defaultMetadata, MetadataMatcher } from './image/metadata.js';
export type { MetadataTable, MetadataRule, ResolvedMetadata } from './image/metadata.js';
export { mergeTars, differingField, checkLayersDisjoint } from './image/layer-merge.js';
export type { LabelledLayer } from './image/layer-merge.js';
export { diffEntries, writeDiffLayer } from './image/layer-diff.js';
export { checkTar } from './image/tar-check.js';
export type { CheckTarOptions } from './image/tar-check.js';
export { checkElfClosure, checkElfClosureInFacts, elfFactsOfTar, findMissingLibraries, findMissingLibrariesInFacts, readElfDynamic } from './image/elf-closure.js';
export type { ClosureLayer, ElfDynamic, LayerElfFacts, MissingLibrary } from './image/elf-closure.js';
export { partitionEntries } from './image/layer-partition.js';
export { compressFile, gzipFile, layerMediaTypes, parseLayerCompression, pinGzipHeader, GZIP_LEVEL, GZIP_OS_BYTE, ZSTD_LEVEL } from './image/compress.js';
export type { LayerCodec, LayerCompression } from './image/compress.js';
export type { GzipResult } from './image/compress.js';
export { imageConfigJson, canonicalJson } from './image/image-config.js';
export type { ImageConfig, ImageInput, ImageResult } from './image/image-config.js';
export { writeDockerArchive } from './image/docker-archive.js';
export { writeOciLayout, writeOciImageIndex, ociMediaTypes, addOciArtifact, ociBlobSize } from './image/oci.js';
export type { OciLayoutInput, OciIndexInput, OciIndexResult, OciArtifactInput } from './image/oci.js';
export { assembleImage, ensureImageStored, layerFactsOfTar, readAssembledImage, recordHeadFactKind, writeDockerArchiveView, writeOciArchiveView } from './image/assemble.js';
export type { OrderedArchiveResult, OrderedMember, PreviousArchive } from './image/ordered-archive.js';
export type { AssembleInput, AssembledImage, AssembledLayer, AssembledPlatformImage, ArtifactForImage, LayerFacts, StoredBlob } from './image/assemble.js';
export { openImageView } from './image/image-view.js';
export type { ImageView, ImageViewContext } from './image/image-view.js';
export { BlobStore } from './image/blob-store.js';
export { loadImageDescription, imageForPlatform } from './image/description.js';
export type { ImageDescription, ImagePlatform } from './image/description.js';
export { compareArchives, describeDifference } from './image/archive-diff.js';
export type { ArchiveDifference } from './image/archive-diff.js';

// Initrds: deterministic cpio newc archives for the kernel's initramfs.
export { writeCpio } from './image/cpio.js';
export type { WriteCpioOptions, CpioResult } from './image/cpio.js';

// Target specs and sources: spec files, pinned fetching, .deb reading, fragments, provenance.
export { loadSpec, parseSpec, parseDebUrl, findProjectRoot as findSpecRoot, requiredSpecPath, specSuffix } from './sources/spec.js';
export type { Spec, SourceSpec, SourceKind, SourceLocation, PatchSpec, FileRule, LoadSpecOptions } from './sources/spec.js';
export { parseIntegrity, integrityOfFile, integrityOfBytes, checkFile } from './sources/integrity.js';
export type { Integrity } from './sources/integrity.js';
export { cacheDirFrom } from './sources/store.js';
export { fetchSource, pinSource } from './sources/fetch.js';
export type { FetchOptions, FetchedSource } from './sources/fetch.js';
export { listArMembers, openDebData, readDebEntries } from './sources/deb.js';
export type { ArMember } from './sources/deb.js';
export { buildFragment, mergeFragments } from './sources/fragment.js';
export type { BuildFragmentOptions, FragmentResult, FragmentBuildEnvironment, PinnedSource } from './sources/fragment.js';
export { pinSpecs } from './sources/pin.js';
export type { PinOptions, PinChange } from './sources/pin.js';
export { collectSpecs, listPins, projectFilesOf, projectInputsOf } from './sources/provenance.js';
export type { ReachedSpec } from './sources/provenance.js';
export { compileGlob } from './sources/glob.js';
export { buildEnvironmentOf, findBuildEnvironmentSpec, buildEnvironmentSpecName, scriptEnvironmentOf } from './sources/build-environment.js';
export { hostArchitecture } from './sources/debian/indexes.js';
export type { BuildEnvironmentFragment } from './sources/build-environment.js';

// Sandbox: build environments assembled from fragments, and build steps run in them (docs/specs.md).
export { assembleBuildEnvironment, resolveInRoot } from './sandbox/environment.js';
export type { EnvironmentPart, AssembleEnvironmentOptions } from './sandbox/environment.js';
export { runInSandbox, chooseSandboxTool, probeSandbox, sandboxFacts } from './sandbox/sandbox.js';
export type { BuildEnvironment, SandboxBind, SandboxStep, SandboxRunOptions, SandboxTool } from './sandbox/sandbox.js';

// Inventory: what is in an image and where each file came from; SBOMs and the audit.
export { collectInventory, descriptionOfTarget, packageKey, purlOf } from './inventory/inventory.js';
export type { Inventory, InventoryFile, InventoryLayer, InventoryPackage, InventorySpec, InventoryOptions, FileOrigin } from './inventory/inventory.js';
export { debSourceProvider } from './inventory/packages.js';
export type { DebPackage, PackageProvider, DebSourceProviderOptions } from './inventory/packages.js';
export { spdxDocument } from './inventory/spdx.js';
export type { SbomOptions } from './inventory/spdx.js';
export { cyclonedxDocument } from './inventory/cyclonedx.js';
export { licenceOfCopyright, spdxOfDebianLicence } from './inventory/licence.js';
export { auditInventory, formatFindings, describeOrigin, findingKinds } from './inventory/audit.js';
export type { Finding, FindingKind, AuditResult } from './inventory/audit.js';
export type { LicenceFinding } from './inventory/licence.js';
// Registries: push, pinned base images, the remote build cache.
export { parseReference, isLoopbackHost } from './registry/reference.js';
export type { RegistryReference } from './registry/reference.js';
export { pushLayout } from './registry/push.js';
export type { PushReport, PushedBlob } from './registry/push.js';
export { fetchBaseImage, configOnBase, resolveBaseInputs } from './registry/base-image.js';
export type { BaseImage, BaseInputs, FetchBaseOptions } from './registry/base-image.js';
export { holdTemporary, withScratchFolder } from './sources/scratch.js';
// Debian package lists: the lock file format (docs/debian.md) and Debian version order.
export { readDebianLock, parseLock, lockPathOf } from './sources/debian/lock.js';
export type { DebianLock, LockedPackage } from './sources/debian/lock.js';
export { compareDebianVersions } from './sources/debian/version.js';
export { checkPlatformVersions, versionDifferences } from './sources/debian/platforms.js';

/** What the views of an assembled image (NAME.tar, NAME.oci.tar) share: the description check, the record, the store filled again. */

import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { RedoError } from '../errors.js';
import { ensureImageStored, isImageStored, readAssembledImage, recordHeadFactKind, type AssembledImage } from './assemble.js';
import { BlobStore } from './blob-store.js';

/** The parts of a rule's context a view reads (RuleContext has them all). */
export interface ImageViewContext {
  /** $1, the target relative to `dir` (NAME.tar, NAME.oci.tar). */
  target: string;
  /** $2: NAME. */
  base: string;
  dir: string;
  root: string;
  targetPath: string;
  ifchange(...paths: string[]): Promise<void>;
  ifcreate(...paths: string[]): Promise<void>;
  ifchangeEnv(...names: string[]): Array<string | undefined>;
}

/** An assembled image ready for a view: its record, the project's store holding every blob, how errors name the view. */
export interface ImageView {
  record: AssembledImage;
  store: BlobStore;
  /** The view as errors name it: `"DIR/NAME.tar"`, quoted, relative to the project. */
  subject: string;
}

/**
 * Opens the assembled image a view of NAME.yaml writes: depends on SOURCE_DATE_EPOCH
 * (every member's mtime) and on NAME.image.json (which assembles and checks the image),
 * reads that record, and makes sure the project's store holds every blob of it (a record
 * from the remote build cache, or a removed store: ensureImageStored). Throws
 * ERR_IMAGE_DESCRIPTION, after an ifcreate of NAME.yaml, when there is no NAME.yaml (with
 * `hintPrefix` before the usual hint, e.g. what a layer list naming the target should
 * check), and ERR_IMAGE_STORE when the record is unreadable or a blob cannot be restored.
 */
export async function openImageView(ctx: ImageViewContext, hintPrefix = ''): Promise<ImageView> {
  ctx.ifchangeEnv('SOURCE_DATE_EPOCH');
  const descriptionName = `${ctx.base}.yaml`;
  if (!existsSync(join(ctx.dir, descriptionName))) {
    await ctx.ifcreate(descriptionName);
    throw new RedoError('ERR_IMAGE_DESCRIPTION', `redo: "${relative(ctx.root, ctx.targetPath)}": no such file, and no image description "${relative(ctx.root, join(ctx.dir, descriptionName))}" to build it from`, {
      hint: `${hintPrefix}to build an image, write ${descriptionName} (see docs/image.md), or name a rule ${ctx.target}.do`,
    });
  }
  const recordName = `${ctx.base}.image.json`;
  await ctx.ifchange(recordName);
  const recordPath = join(ctx.dir, recordName);
  const store = BlobStore.ofProject(ctx.root);
  const subject = `"${relative(ctx.root, ctx.targetPath)}"`;
  const record = await openImageRecord(store, recordPath, relative(ctx.root, recordPath), subject);
  return { record, store, subject };
}

/**
 * The image record at `recordPath` (NAME.image.json; `label` names it in errors) with
 * every blob of it in `store`: the record without its inline bytes (most of it the
 * SBOMs), kept as a fact under the record's digest by the rule that wrote it, when the
 * file is still that one and the store holds every blob (the record is then not read
 * at all); else the record read in full, and the store filled again from it and the
 * layer targets beside it (ensureImageStored; `subject`, the view or push, names it in
 * errors), and its head kept for the next time. Throws ERR_IMAGE_STORE as readAssembledImage and ensureImageStored do.
 */
export async function openImageRecord(store: BlobStore, recordPath: string, label: string, subject: string): Promise<AssembledImage> {
  const head = recordHead(store, recordPath);
  if (head !== undefined && isImageStored(head, store)) return head;
  const record = readAssembledImage(recordPath, label);
  await ensureImageStored(record, store, dirname(recordPath), subject);
  // Kept for the next view or push (a record from the remote cache, a head `store gc`
  // collected): the record is hashed once more and its digest remembered for the file.
  try {
    store.facts(store.digestOf(recordPath), recordHeadFactKind, () => ({ ...record, inline: {} }));
  } catch {
    // Only the next view's speed depends on it.
  }
  return record;
}

/** The record at `recordPath` without its inline bytes, from the store's facts, when the file is the one last written or stored there (not read); else undefined. */
function recordHead(store: BlobStore, recordPath: string): AssembledImage | undefined {
  const digest = store.rememberedDigestOf(recordPath);
  return digest === undefined ? undefined : store.peekFacts<AssembledImage>(digest, recordHeadFactKind);
}

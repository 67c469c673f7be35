/** The engine's public surface, re-exported by lib/index.ts. */

export { Engine } from './build.js';
export type { EngineOptions, BuildSummary } from './build.js';
export { describeReason } from './events.js';
export type { BuildEvent, BuildEventListener, RebuildReason } from './events.js';
export { explainTarget, listOutOfDate, listSources, listTargets, listTransitiveSources } from './inspect.js';
export type { Explanation } from './inspect.js';
export { findRule, candidateNames } from './lookup.js';
export type { FoundRule, RuleLookup, RuleKind } from './lookup.js';
export { findProjectRoot, toTargetPath } from './paths.js';
export type { RuleFunction, TypeScriptRuleSupport } from './runner.js';
export { STATE_VERSION } from './state.js';
export type { CacheHit, CacheLookup, CacheOffer, CachedDependency, TargetCache } from './target-cache.js';

/**
 * @module
 * Which cache changes wake which controller, in one place: the feeds the caches report to, and the
 * subscriptions that turn a change into keys. A change that cannot alter a decision (an ImageStream
 * status update, a namespace event that leaves its planner facts alone) wakes nothing.
 */
import {
  type KubeObject,
  LEGACY_QUAY_INTEGRATIONS,
  QUAY_INTEGRATIONS,
  type ResourceType,
} from "../kube/resources.ts";
import { PROJECT_READY_ANNOTATION, ROTATE_ANNOTATION } from "../names.ts";
import { ChangeFeed, type Controller } from "./controller.ts";
import { integrationKey } from "./integration_registry.ts";
import type { BuildView, ImageStreamView, NamespaceView, SecretView, ServiceAccountView } from "./views.ts";

/** The feeds of the operator's caches, plus one for credentials changes. */
export interface CacheFeeds {
  readonly namespaces: ChangeFeed<NamespaceView>;
  readonly imageStreams: ChangeFeed<ImageStreamView>;
  readonly secrets: ChangeFeed<SecretView>;
  readonly serviceAccounts: ChangeFeed<ServiceAccountView>;
  readonly builds: ChangeFeed<BuildView>;
  readonly integrationsV1: ChangeFeed<KubeObject>;
  readonly integrationsLegacy: ChangeFeed<KubeObject>;
  /** An integration's credentials changed, or Quay's verdict on its token did (key: the integration). */
  readonly credentials: ChangeFeed<void>;
}

/** New, unsubscribed feeds. */
export function cacheFeeds(): CacheFeeds {
  return {
    namespaces: new ChangeFeed(),
    imageStreams: new ChangeFeed(),
    secrets: new ChangeFeed(),
    serviceAccounts: new ChangeFeed(),
    builds: new ChangeFeed(),
    integrationsV1: new ChangeFeed(),
    integrationsLegacy: new ChangeFeed(),
    credentials: new ChangeFeed(),
  };
}

/** The controllers woken, and what the subscriptions read. */
export interface Triggered {
  readonly namespace: Controller;
  readonly integration: Controller;
  readonly build: Controller;
  /** Every namespace name (an integration change may concern any of them). */
  readonly namespaces: () => Iterable<string>;
  /** Records a QuayIntegration change; false when nothing that matters changed. */
  readonly integrationChanged: (key: string, current: KubeObject | undefined) => boolean;
}

/** Subscribes the controllers to the feeds. */
export function subscribe(feeds: CacheFeeds, to: Triggered): void {
  const allNamespaces = () => {
    for (const name of to.namespaces()) to.namespace.enqueue(name);
  };
  feeds.credentials.on((key) => {
    to.integration.enqueue(key);
    allNamespaces();
  });
  feeds.namespaces.on((key, current, previous) => {
    if (current && previous && sameNamespaceFacts(current, previous)) return;
    to.namespace.enqueue(key);
  });
  feeds.imageStreams.on((_key, current, previous) => {
    // Only additions and removals change what Quay needs; status updates (imports) do not.
    if (current && previous) return;
    const ns = (current ?? previous)?.namespace;
    if (ns) to.namespace.enqueue(ns);
  });
  feeds.secrets.on((_key, current, previous) => {
    const ns = (current ?? previous)?.namespace;
    if (ns) to.namespace.enqueue(ns);
  });
  feeds.serviceAccounts.on((_key, current, previous) => {
    if (
      current && previous && JSON.stringify(current.secrets) === JSON.stringify(previous.secrets) &&
      JSON.stringify(current.imagePullSecrets) === JSON.stringify(previous.imagePullSecrets)
    ) return;
    const ns = (current ?? previous)?.namespace;
    if (ns) to.namespace.enqueue(ns);
  });
  feeds.builds.on((key, current) => {
    // Only a managed, completed, not yet imported Build needs work.
    if (current && current.phase === "Complete" && !current.imported) to.build.enqueue(key);
  });
  const onIntegration = (type: ResourceType) => (name: string, current: KubeObject | undefined) => {
    const key = integrationKey(`${type.group}/${type.version}`, name);
    if (!to.integrationChanged(key, current)) return;
    to.integration.enqueue(key);
    allNamespaces();
  };
  feeds.integrationsV1.on(onIntegration(QUAY_INTEGRATIONS));
  feeds.integrationsLegacy.on(onIntegration(LEGACY_QUAY_INTEGRATIONS));
}

/** True when nothing the planner reads from the namespace changed. */
export function sameNamespaceFacts(a: NamespaceView, b: NamespaceView): boolean {
  return a.deleting === b.deleting && JSON.stringify(a.finalizers) === JSON.stringify(b.finalizers) &&
    JSON.stringify(a.labels) === JSON.stringify(b.labels) &&
    a.annotations[PROJECT_READY_ANNOTATION] === b.annotations[PROJECT_READY_ANNOTATION] &&
    a.annotations[ROTATE_ANNOTATION] === b.annotations[ROTATE_ANNOTATION];
}

/**
 * @module
 * How planned changes read: as a plan (`quay-bridge plan` prints "create robot …") and, once made,
 * as an Event (`RobotCreated`, "Created robot …"). One place, so the two never drift apart.
 */
import type { ClusterChange } from "./cluster_plan.ts";
import type { FinalizerChange } from "./namespace_plan.ts";
import type { QuayChange } from "./quay_plan.ts";
import type { RotationReason } from "./rotation_plan.ts";
import { ROTATE_ANNOTATION } from "../names.ts";

/** The Event reason of each Quay change once made. */
export const QUAY_CHANGE_REASONS: Readonly<Record<QuayChange["kind"], string>> = {
  createOrganization: "OrganizationCreated",
  createRobot: "RobotCreated",
  rotateRobot: "CredentialsRotated",
  createPrototype: "DefaultPermissionCreated",
  updatePrototype: "DefaultPermissionUpdated",
  grantRepository: "RepositoryPermissionGranted",
  createRepository: "RepositoryCreated",
  deleteRepository: "RepositoryDeleted",
  deleteOrganization: "OrganizationDeleted",
};

/** A Quay change as a step of a plan. */
export function planText(change: QuayChange, organization: string): string {
  switch (change.kind) {
    case "createOrganization":
      return `create organization ${organization}`;
    case "createRobot":
      return `create robot ${change.robot.fullName}`;
    case "rotateRobot":
      return `rotate the token of robot ${change.robot.fullName} (${rotationCause(change.reason)})`;
    case "createPrototype":
      return `give ${change.robot.fullName} ${change.robot.role} on new repositories`;
    case "updatePrototype":
      return `change ${change.robot.fullName}'s default permission to ${change.robot.role}`;
    case "grantRepository":
      return `grant ${change.robot.role} on ${change.repository} to ${change.robot.fullName}`;
    case "createRepository":
      return `create repository ${organization}/${change.repository}`;
    case "deleteRepository":
      return `delete repository ${organization}/${change.repository}`;
    case "deleteOrganization":
      return `delete organization ${organization}`;
  }
}

/** A Quay change once made, for its Event. */
export function doneText(change: QuayChange, organization: string): string {
  switch (change.kind) {
    case "createOrganization":
      return `Created Quay organization ${organization}`;
    case "createRobot":
      return `Created robot ${change.robot.fullName}`;
    case "rotateRobot":
      return `Rotated the token of robot ${change.robot.fullName} (${
        rotationCause(change.reason)
      }); its Secret is updated in place and the old token no longer works`;
    case "createPrototype":
    case "updatePrototype":
      return `Robot ${change.robot.fullName} gets ${change.robot.role} on new repositories of ${organization}`;
    case "grantRepository":
      return `Granted ${change.robot.role} on ${organization}/${change.repository} to ${change.robot.fullName}`;
    case "createRepository":
      return `Created repository ${organization}/${change.repository}`;
    case "deleteRepository":
      return `Deleted repository ${organization}/${change.repository} (its ImageStream is gone; ` +
        `repositoryDeletionPolicy is Delete)`;
    case "deleteOrganization":
      return `Deleted Quay organization ${organization}`;
  }
}

function rotationCause(reason: RotationReason): string {
  return reason === "requested"
    ? `requested by the namespace annotation ${ROTATE_ANNOTATION}`
    : "spec.credentialRotation.interval";
}

/** A cluster change as a step of a plan. */
export function clusterPlanText(change: ClusterChange): string {
  switch (change.kind) {
    case "createSecret":
      return `create Secret ${change.secret}`;
    case "updateSecret":
      return `update Secret ${change.secret}`;
    case "linkSecret":
      return `link Secret ${change.secret} to service account ${change.account.name}`;
  }
}

/** A finalizer change as a step of a plan; undefined for none. */
export function finalizerPlanText(change: FinalizerChange): string | undefined {
  if (change === "add") return "add the namespace finalizer";
  if (change === "release") return "release the namespace finalizer";
  return undefined;
}

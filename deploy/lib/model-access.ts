import type { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';

/** The geographic prefixes of Bedrock's system-defined (cross-region) inference profiles. */
const PROFILE_ID = /^(us|us-gov|eu|apac|jp|au|ca|global)\.(.+)$/;

/** Converse and ConverseStream, which the host calls, are authorized as these two actions. */
const INVOKE_ACTIONS = ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'];

/** The statements that let a role call exactly one model or inference profile. */
export function modelInvokeStatements(stack: Stack, modelId: string): iam.PolicyStatement[] {
  const profile = PROFILE_ID.exec(modelId);
  if (profile === null) {
    return [
      new iam.PolicyStatement({
        sid: 'InvokeModel',
        actions: INVOKE_ACTIONS,
        resources: [`arn:${stack.partition}:bedrock:${stack.region}::foundation-model/${modelId}`],
      }),
    ];
  }
  const profileArn =
    `arn:${stack.partition}:bedrock:${stack.region}:${stack.account}:inference-profile/${modelId}`;
  return [
    new iam.PolicyStatement({ sid: 'InvokeInferenceProfile', actions: INVOKE_ACTIONS, resources: [profileArn] }),
    // The profile sends a request to the model in any of its regions (a global profile also
    // to the region-less ARN), so the region is left open — but only through this profile.
    new iam.PolicyStatement({
      sid: 'InvokeModelThroughProfile',
      actions: INVOKE_ACTIONS,
      resources: [`arn:${stack.partition}:bedrock:*::foundation-model/${profile[2]}`],
      conditions: { StringEquals: { 'bedrock:InferenceProfileArn': profileArn } },
    }),
  ];
}

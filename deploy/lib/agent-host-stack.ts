import { CfnOutput, Duration, IgnoreMode, RemovalPolicy, SecretValue, Stack, type StackProps } from 'aws-cdk-lib';
import * as agentcore from 'aws-cdk-lib/aws-bedrockagentcore';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { type AgentHostConfig, REPO_ROOT, readConfig } from './config';
import { modelInvokeStatements } from './model-access';

/** What the bot token secret holds until the operator puts the real token (not a token: the relay answers 503). */
export const BOT_TOKEN_PLACEHOLDER = 'PUT-THE-BOT-TOKEN-HERE';

/** Where AgentCore mounts each session's storage: the image's `workspace_root`. */
export const WORKSPACE_MOUNT = '/mnt/workspace';

/** The key prefix of the users' histories in the bucket. */
export const HISTORY_PREFIX = 'histories/';

/** How long the relay waits for AgentCore. */
const RELAY_INVOKE_TIMEOUT_SECS = 30;

/** Above the wait, so a relay whose AgentCore call timed out can still tell the user and answer Telegram. */
const RELAY_TIMEOUT_SECS = 60;

/**
 * What the image's build context leaves out: cargo's outputs (tens of GB under `target/`),
 * git's store, and what the Dockerfile never copies (this app with its node_modules and
 * cdk.out, the docs, CI). Synth then hashes a few MB, and editing those files makes no new
 * image — a new runtime version resets every session's storage.
 */
export const IMAGE_EXCLUDES = ['.git', 'target', '**/target', 'deploy', '.ci', 'docs', 'README.md'];

/**
 * agent-host on AgentCore Runtime, the Telegram webhook relay in front of it, their secrets
 * and the histories' bucket. Configured by context parameters (see README.md).
 */
export class AgentHostStack extends Stack {
  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    const config = readConfig(this.node);
    const bucket = historyBucket(this);
    const botToken = botTokenSecret(this);
    const webhookSecret = webhookSecretOf(this);
    const runtime = agentRuntime(this, config, bucket, botToken);
    const url = relay(this, config, runtime, botToken, webhookSecret);
    outputs(this, { runtime, url, bucket, botToken, webhookSecret });
  }
}

function historyBucket(scope: Construct): s3.Bucket {
  return new s3.Bucket(scope, 'Histories', {
    encryption: s3.BucketEncryption.S3_MANAGED,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    // Every message rewrites a user's history object: old versions undo a bad write for a while.
    versioned: true,
    lifecycleRules: [{ noncurrentVersionExpiration: Duration.days(30) }],
    removalPolicy: RemovalPolicy.RETAIN,
  });
}

function botTokenSecret(scope: Construct): secretsmanager.Secret {
  return new secretsmanager.Secret(scope, 'BotToken', {
    description: "agent-host: the Telegram bot's token from @BotFather. Created with a placeholder; " +
      'put the real token with aws secretsmanager put-secret-value (see the NextSteps output).',
    // A placeholder, not a secret: the real token never passes through CloudFormation.
    secretStringValue: SecretValue.unsafePlainText(BOT_TOKEN_PLACEHOLDER),
  });
}

/** Telegram allows 1-256 characters of [A-Za-z0-9_-]: letters and digits only fit. */
function webhookSecretOf(scope: Construct): secretsmanager.Secret {
  return new secretsmanager.Secret(scope, 'WebhookSecret', {
    description: 'agent-host: the secret Telegram sends with every webhook delivery ' +
      '(X-Telegram-Bot-Api-Secret-Token); the relay refuses deliveries without it.',
    generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
  });
}

function agentRuntime(
  scope: Construct,
  config: AgentHostConfig,
  bucket: s3.IBucket,
  botToken: secretsmanager.ISecret,
): agentcore.Runtime {
  const runtime = new agentcore.Runtime(scope, 'Runtime', {
    runtimeName: config.runtimeName,
    description: 'agent-host serve: a coding agent, one microVM per Telegram user session',
    // fromAsset sets no platform, and AgentCore runs only arm64.
    agentRuntimeArtifact: agentcore.AgentRuntimeArtifact.fromAsset(REPO_ROOT, {
      platform: Platform.LINUX_ARM64,
      ignoreMode: IgnoreMode.DOCKER,
      exclude: IMAGE_EXCLUDES,
    }),
    lifecycleConfiguration: {
      idleRuntimeSessionTimeout: Duration.seconds(config.idleTimeoutSecs),
      maxLifetime: Duration.seconds(config.maxLifetimeSecs),
    },
    environmentVariables: {
      AGENT_HOST_ALLOWED_USERS: config.allowedUsers,
      AGENT_HOST_MODEL_ID: config.modelId,
      AGENT_HOST_HISTORY_STORE: 's3',
      AGENT_HOST_HISTORY_S3_BUCKET: bucket.bucketName,
      AGENT_HOST_HISTORY_S3_PREFIX: HISTORY_PREFIX,
      // The secret's ARN, never its value: the host reads it at the first Telegram update.
      AGENT_HOST_TELEGRAM_BOT_TOKEN_SECRET: botToken.secretArn,
    },
  });
  addSessionStorage(runtime);
  grantRuntime(runtime.role, config.modelId, bucket, botToken);
  return runtime;
}

/** The L2 Runtime has no session storage: it is set on the CfnRuntime beneath it. */
function addSessionStorage(runtime: agentcore.Runtime): void {
  const resource = runtime.node.defaultChild;
  if (!(resource instanceof agentcore.CfnRuntime)) {
    throw new Error('the Runtime construct no longer has a CfnRuntime as its default child');
  }
  resource.filesystemConfigurations = [{ sessionStorage: { mountPath: WORKSPACE_MOUNT } }];
}

/**
 * The host's own needs. The L2 Runtime already grants what AgentCore needs (its log group,
 * X-Ray, CloudWatch metrics, workload identity, pulling the image from the asset repository).
 */
function grantRuntime(
  role: iam.IRole,
  modelId: string,
  bucket: s3.IBucket,
  botToken: secretsmanager.ISecret,
): void {
  for (const statement of modelInvokeStatements(Stack.of(role), modelId)) {
    role.addToPrincipalPolicy(statement);
  }
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    sid: 'Histories',
    actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
    resources: [bucket.arnForObjects(`${HISTORY_PREFIX}*`)],
  }));
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    sid: 'ListHistories',
    actions: ['s3:ListBucket'],
    resources: [bucket.bucketArn],
    conditions: { StringLike: { 's3:prefix': `${HISTORY_PREFIX}*` } },
  }));
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    sid: 'ReadBotToken',
    actions: ['secretsmanager:GetSecretValue'],
    resources: [botToken.secretArn],
  }));
}

/** The relay Lambda behind a public Function URL; returns the URL Telegram is pointed at. */
function relay(
  scope: Construct,
  config: AgentHostConfig,
  runtime: agentcore.Runtime,
  botToken: secretsmanager.ISecret,
  webhookSecret: secretsmanager.ISecret,
): lambda.FunctionUrl {
  const role = relayRole(scope, runtime, [botToken, webhookSecret]);
  const logGroup = new logs.LogGroup(scope, 'RelayLogs', { retention: logs.RetentionDays.ONE_MONTH });
  logGroup.grantWrite(role);
  const fn = new lambda.Function(scope, 'Relay', {
    description: 'agent-host-relay: Telegram webhook to AgentCore InvokeAgentRuntime',
    runtime: lambda.Runtime.PROVIDED_AL2023,
    architecture: lambda.Architecture.ARM_64,
    handler: 'bootstrap',
    code: lambda.Code.fromAsset(config.relayAsset),
    memorySize: 256,
    timeout: Duration.seconds(RELAY_TIMEOUT_SECS),
    role,
    logGroup,
    environment: {
      RELAY_RUNTIME_ARN: runtime.agentRuntimeArn,
      RELAY_WEBHOOK_SECRET_ID: webhookSecret.secretArn,
      RELAY_BOT_TOKEN_SECRET_ID: botToken.secretArn,
      RELAY_ALLOWED_USERS: config.allowedUsers,
      RELAY_INVOKE_TIMEOUT_SECS: String(RELAY_INVOKE_TIMEOUT_SECS),
    },
  });
  // Telegram cannot sign requests: the relay checks the webhook secret itself.
  return fn.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });
}

/** Its own role rather than the default one, whose managed policy writes any log group. */
function relayRole(
  scope: Construct,
  runtime: agentcore.Runtime,
  secrets: secretsmanager.ISecret[],
): iam.Role {
  const role = new iam.Role(scope, 'RelayRole', {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: 'agent-host-relay: invoke the agent-host runtime, read the bot token and webhook secret',
  });
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    sid: 'InvokeRuntime',
    actions: ['bedrock-agentcore:InvokeAgentRuntime'],
    resources: [runtime.agentRuntimeArn, `${runtime.agentRuntimeArn}/runtime-endpoint/*`],
  }));
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    sid: 'ReadSecrets',
    actions: ['secretsmanager:GetSecretValue'],
    resources: secrets.map((secret) => secret.secretArn),
  }));
  return role;
}

interface Deployed {
  readonly runtime: agentcore.Runtime;
  readonly url: lambda.FunctionUrl;
  readonly bucket: s3.IBucket;
  readonly botToken: secretsmanager.ISecret;
  readonly webhookSecret: secretsmanager.ISecret;
}

function outputs(stack: Stack, { runtime, url, bucket, botToken, webhookSecret }: Deployed): void {
  const output = (id: string, value: string, description: string) =>
    new CfnOutput(stack, id, { value, description });
  output('WebhookUrl', url.url, "The relay's Function URL: Telegram's webhook");
  output('BotTokenSecretArn', botToken.secretArn, "The bot token's secret (holds a placeholder until you put the token)");
  output('WebhookSecretArn', webhookSecret.secretArn, "The webhook secret's ARN (generated)");
  output('HistoryBucketName', bucket.bucketName, "The bucket of the users' histories");
  output('RuntimeArn', runtime.agentRuntimeArn, 'The AgentCore runtime running agent-host serve');
  output('NextSteps', nextSteps(stack, url.url, botToken.secretArn, webhookSecret.secretArn),
    'Put the bot token, then point Telegram at the relay');
}

/** The two commands that finish a first deployment, with this stack's names filled in. */
function nextSteps(stack: Stack, webhookUrl: string, botTokenArn: string, webhookSecretArn: string): string {
  return `1) aws secretsmanager put-secret-value --region ${stack.region} --secret-id ${botTokenArn} ` +
    "--secret-string '<token from @BotFather>'   " +
    `2) AGENT_HOST_TELEGRAM_BOT_TOKEN_SECRET=${botTokenArn} AWS_REGION=${stack.region} agent-host telegram set-webhook ` +
    `--url ${webhookUrl} --secret-id ${webhookSecretArn}`;
}

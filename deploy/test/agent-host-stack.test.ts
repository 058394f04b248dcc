import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AgentHostStack, BOT_TOKEN_PLACEHOLDER } from '../lib/agent-host-stack';

const DEFAULT_MODEL = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';
const PLAIN_MODEL = 'anthropic.claude-3-5-haiku-20241022-v1:0';

/** Scratch space: a stand-in for the relay's cargo build and the cloud assemblies. */
let scratch: string;
let relayAsset: string;

before(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-host-deploy-'));
  relayAsset = path.join(scratch, 'relay');
  fs.mkdirSync(relayAsset);
  fs.writeFileSync(path.join(relayAsset, 'bootstrap'), '#!/bin/sh\n', { mode: 0o755 });
});

after(() => fs.rmSync(scratch, { recursive: true, force: true }));

interface Synthesized {
  readonly template: Template;
  /** The cloud assembly's directory: asset manifest and staged assets. */
  readonly outdir: string;
}

/** Builds the app as `cdk synth -c allowedUsers=123,456 -c relayAsset=<stand-in>` would, plus `context`. */
function synth(context: Context = {}): Synthesized {
  const app = newApp(context);
  const stack = new AgentHostStack(app, 'AgentHostStack');
  return { template: Template.fromStack(stack), outdir: app.outdir };
}

/** Context parameters; `undefined` takes a default away. */
type Context = Record<string, string | undefined>;

function newApp(context: Context): App {
  const outdir = fs.mkdtempSync(path.join(scratch, 'cdk.out-'));
  return new App({ outdir, context: { allowedUsers: '123,456', relayAsset, ...context } });
}

type Json = Record<string, any>;

/** CloudFormation intrinsics as text: `${Logical.Attr}` for GetAtt, `${Logical}` for Ref. */
function text(value: unknown): string {
  if (typeof value === 'string') {
    return value;
  }
  const json = value as Json;
  if ('Fn::Join' in json) {
    const [separator, parts] = json['Fn::Join'] as [string, unknown[]];
    return parts.map(text).join(separator);
  }
  if ('Ref' in json) {
    return `\${${json.Ref}}`;
  }
  if ('Fn::GetAtt' in json) {
    return `\${${(json['Fn::GetAtt'] as string[]).join('.')}}`;
  }
  if ('Fn::Sub' in json) {
    return json['Fn::Sub'] as string;
  }
  throw new Error(`no text for ${JSON.stringify(value)}`);
}

const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : [value]);

/** The one resource of a type: its logical id and properties. */
function only(template: Template, type: string): { id: string; props: Json } {
  const found = Object.entries(template.findResources(type));
  assert.equal(found.length, 1, `one ${type}`);
  const [id, resource] = found[0];
  return { id, props: (resource as Json).Properties ?? {} };
}

interface Statement {
  readonly sid?: string;
  readonly actions: string[];
  readonly resources: string[];
  readonly condition?: Json;
}

/** Every statement of the inline policies attached to a role, intrinsics as text. */
function statementsOf(template: Template, roleId: string): Statement[] {
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy: Json) => policy.Properties.Roles.some((role: Json) => role.Ref === roleId))
    .flatMap((policy: Json) => policy.Properties.PolicyDocument.Statement as Json[])
    .map((statement) => {
      assert.equal(statement.Effect, 'Allow');
      return {
        sid: statement.Sid,
        actions: list(statement.Action).map(text),
        resources: list(statement.Resource).map(text),
        condition: statement.Condition,
      };
    });
}

function bySid(statements: Statement[], sid: string): Statement {
  const statement = statements.find((candidate) => candidate.sid === sid);
  assert.ok(statement, `a statement ${sid}`);
  return statement;
}

const runtimeRoleId = (template: Template) => only(template, 'AWS::BedrockAgentCore::Runtime').props.RoleArn['Fn::GetAtt'][0];
const relayRoleId = (template: Template) => only(template, 'AWS::Lambda::Function').props.Role['Fn::GetAtt'][0];

/** Environment values as text, keyed by name. */
const textValues = (env: Json): Record<string, string> =>
  Object.fromEntries(Object.entries(env).map(([key, value]) => [key, text(value)]));

describe('the default deployment', () => {
  let template: Template;
  let outdir: string;
  let ids: { bucket: string; botToken: string; webhookSecret: string; runtime: string; url: string };

  before(() => {
    ({ template, outdir } = synth());
    const secrets = Object.keys(template.findResources('AWS::SecretsManager::Secret'));
    ids = {
      bucket: only(template, 'AWS::S3::Bucket').id,
      botToken: secrets.find((id) => id.startsWith('BotToken'))!,
      webhookSecret: secrets.find((id) => id.startsWith('WebhookSecret'))!,
      runtime: only(template, 'AWS::BedrockAgentCore::Runtime').id,
      url: only(template, 'AWS::Lambda::Url').id,
    };
  });

  it('creates one runtime, one relay with its URL, two secrets and one bucket', () => {
    template.resourceCountIs('AWS::BedrockAgentCore::Runtime', 1);
    template.resourceCountIs('AWS::Lambda::Function', 1);
    template.resourceCountIs('AWS::Lambda::Url', 1);
    template.resourceCountIs('AWS::SecretsManager::Secret', 2);
    template.resourceCountIs('AWS::S3::Bucket', 1);
  });

  it('builds the image for linux/arm64 from the repository, without build outputs', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(outdir, 'AgentHostStack.assets.json'), 'utf8'));
    const images = Object.entries(manifest.dockerImages as Json);
    assert.equal(images.length, 1);
    const [hash, image] = images[0];
    assert.equal(image.source.platform, 'linux/arm64');
    const uri = text(only(template, 'AWS::BedrockAgentCore::Runtime').props.AgentRuntimeArtifact.ContainerConfiguration.ContainerUri);
    assert.ok(uri.endsWith(`:${hash}`), uri);
    const context = fs.readdirSync(path.join(outdir, image.source.directory));
    for (const needed of ['Dockerfile', 'Cargo.toml', 'Cargo.lock', 'host', 'image', 'plugins', 'relay', 'updates', 'wit', 'tests']) {
      assert.ok(context.includes(needed), `the build context has ${needed}`);
    }
    for (const left of ['target', '.git', 'deploy', 'docs']) {
      assert.ok(!context.includes(left), `the build context leaves out ${left}`);
    }
    assert.ok(!fs.existsSync(path.join(outdir, image.source.directory, 'plugins', 'target')));
  });

  it('runs the relay on arm64 provided.al2023 with 256 MB and 60 s behind a public Function URL', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Architectures: ['arm64'],
      Runtime: 'provided.al2023',
      Handler: 'bootstrap',
      MemorySize: 256,
      Timeout: 60,
    });
    template.hasResourceProperties('AWS::Lambda::Url', { AuthType: 'NONE' });
  });

  it("keeps the relay's logs for a month", () => {
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
    const logGroup = only(template, 'AWS::Logs::LogGroup').id;
    assert.deepEqual(only(template, 'AWS::Lambda::Function').props.LoggingConfig, { LogGroup: { Ref: logGroup } });
  });

  it("gives the runtime the host's configuration", () => {
    const env = only(template, 'AWS::BedrockAgentCore::Runtime').props.EnvironmentVariables;
    assert.deepEqual(textValues(env), {
      AGENT_HOST_ALLOWED_USERS: '123,456',
      AGENT_HOST_MODEL_ID: DEFAULT_MODEL,
      AGENT_HOST_HISTORY_STORE: 's3',
      AGENT_HOST_HISTORY_S3_BUCKET: `\${${ids.bucket}}`,
      AGENT_HOST_HISTORY_S3_PREFIX: 'histories/',
      AGENT_HOST_TELEGRAM_BOT_TOKEN_SECRET: `\${${ids.botToken}}`,
    });
  });

  it("gives the relay the relay's configuration", () => {
    const env = only(template, 'AWS::Lambda::Function').props.Environment.Variables;
    assert.deepEqual(textValues(env), {
      RELAY_RUNTIME_ARN: `\${${ids.runtime}.AgentRuntimeArn}`,
      RELAY_WEBHOOK_SECRET_ID: `\${${ids.webhookSecret}}`,
      RELAY_BOT_TOKEN_SECRET_ID: `\${${ids.botToken}}`,
      RELAY_ALLOWED_USERS: '123,456',
      RELAY_INVOKE_TIMEOUT_SECS: '30',
    });
  });

  it('puts no secret value in any environment', () => {
    const environments = JSON.stringify([
      only(template, 'AWS::BedrockAgentCore::Runtime').props.EnvironmentVariables,
      only(template, 'AWS::Lambda::Function').props.Environment,
    ]);
    assert.ok(!environments.includes(BOT_TOKEN_PLACEHOLDER));
    assert.ok(!environments.includes('resolve:secretsmanager'), 'no dynamic reference to a secret value');
    assert.ok(!environments.includes('SecretString'));
  });

  it('sets the default lifecycle', () => {
    template.hasResourceProperties('AWS::BedrockAgentCore::Runtime', {
      LifecycleConfiguration: { IdleRuntimeSessionTimeout: 900, MaxLifetime: 28800 },
      AgentRuntimeName: 'agent_host',
    });
  });

  it("mounts each session's storage at /mnt/workspace", () => {
    template.hasResourceProperties('AWS::BedrockAgentCore::Runtime', {
      FilesystemConfigurations: [{ SessionStorage: { MountPath: '/mnt/workspace' } }],
    });
  });

  it('creates the bot token secret with a placeholder', () => {
    const secret = template.findResources('AWS::SecretsManager::Secret')[ids.botToken].Properties;
    assert.equal(secret.SecretString, BOT_TOKEN_PLACEHOLDER);
    assert.match(secret.Description, /bot's token/);
  });

  it("generates the webhook secret within Telegram's [A-Za-z0-9_-]", () => {
    const secret = template.findResources('AWS::SecretsManager::Secret')[ids.webhookSecret].Properties;
    assert.deepEqual(secret.GenerateSecretString, { ExcludePunctuation: true, IncludeSpace: false, PasswordLength: 64 });
    assert.match(secret.Description, /webhook/);
  });

  it('keeps histories in a private, encrypted, retained bucket that requires TLS', () => {
    template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true,
        },
      },
    });
    const policy = only(template, 'AWS::S3::BucketPolicy').props.PolicyDocument.Statement as Json[];
    assert.ok(policy.some((statement) =>
      statement.Effect === 'Deny' && statement.Condition?.Bool?.['aws:SecureTransport'] === 'false'));
  });

  it('lets the runtime call the inference profile, and its model only through the profile', () => {
    const statements = statementsOf(template, runtimeRoleId(template));
    const actions = ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'];
    const profileArn = `arn:\${AWS::Partition}:bedrock:\${AWS::Region}:\${AWS::AccountId}:inference-profile/${DEFAULT_MODEL}`;
    assert.deepEqual(bySid(statements, 'InvokeInferenceProfile'), {
      sid: 'InvokeInferenceProfile', actions, resources: [profileArn], condition: undefined,
    });
    const model = bySid(statements, 'InvokeModelThroughProfile');
    assert.deepEqual(model.actions, actions);
    assert.deepEqual(model.resources, ['arn:${AWS::Partition}:bedrock:*::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0']);
    assert.equal(text(model.condition?.StringEquals?.['bedrock:InferenceProfileArn']), profileArn);
    assert.equal(statements.filter((statement) => statement.actions.some((action) => action.startsWith('bedrock:'))).length, 2);
  });

  it('lets the runtime read and write histories only under histories/', () => {
    const statements = statementsOf(template, runtimeRoleId(template));
    assert.deepEqual(bySid(statements, 'Histories'), {
      sid: 'Histories',
      actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
      resources: [`\${${ids.bucket}.Arn}/histories/*`],
      condition: undefined,
    });
    assert.deepEqual(bySid(statements, 'ListHistories'), {
      sid: 'ListHistories',
      actions: ['s3:ListBucket'],
      resources: [`\${${ids.bucket}.Arn}`],
      condition: { StringLike: { 's3:prefix': 'histories/*' } },
    });
    const s3 = statements.filter((statement) => statement.actions.some((action) => action.startsWith('s3:')));
    assert.equal(s3.length, 2);
  });

  it('lets the runtime read the bot token and no other secret', () => {
    const statements = statementsOf(template, runtimeRoleId(template));
    const secrets = statements.filter((statement) => statement.actions.some((action) => action.startsWith('secretsmanager:')));
    assert.deepEqual(secrets, [{
      sid: 'ReadBotToken', actions: ['secretsmanager:GetSecretValue'], resources: [`\${${ids.botToken}}`], condition: undefined,
    }]);
  });

  it('lets the relay invoke this runtime, read the two secrets and write its own logs, nothing more', () => {
    const logGroup = only(template, 'AWS::Logs::LogGroup').id;
    assert.deepEqual(statementsOf(template, relayRoleId(template)), [
      {
        sid: 'InvokeRuntime',
        actions: ['bedrock-agentcore:InvokeAgentRuntime'],
        resources: [`\${${ids.runtime}.AgentRuntimeArn}`, `\${${ids.runtime}.AgentRuntimeArn}/runtime-endpoint/*`],
        condition: undefined,
      },
      {
        sid: 'ReadSecrets',
        actions: ['secretsmanager:GetSecretValue'],
        resources: [`\${${ids.botToken}}`, `\${${ids.webhookSecret}}`],
        condition: undefined,
      },
      {
        sid: undefined,
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [`\${${logGroup}.Arn}`],
        condition: undefined,
      },
    ]);
    const role = template.findResources('AWS::IAM::Role')[relayRoleId(template)].Properties;
    assert.equal(role.ManagedPolicyArns, undefined, 'no AWSLambdaBasicExecutionRole (logs on every group)');
  });

  it('grants "*" only where AWS names no resource, and any-region models only through the profile', () => {
    // What the L2 Runtime grants for AgentCore: these actions take no resource ARN.
    const resourceless = (statement: Statement) =>
      statement.actions.every((action) => action.startsWith('xray:') || action === 'ecr:GetAuthorizationToken') ||
      (statement.actions.join() === 'cloudwatch:PutMetricData' &&
        statement.condition?.StringEquals?.['cloudwatch:namespace'] === 'bedrock-agentcore');
    for (const roleId of [runtimeRoleId(template), relayRoleId(template)]) {
      for (const statement of statementsOf(template, roleId)) {
        if (statement.resources.includes('*')) {
          assert.ok(resourceless(statement), `"*" for ${statement.actions.join(', ')}`);
        }
        if (statement.resources.some((resource) => resource.includes(':bedrock:*:'))) {
          assert.ok(statement.condition?.StringEquals?.['bedrock:InferenceProfileArn'], 'any region only through the profile');
        }
      }
    }
    assert.ok(!statementsOf(template, relayRoleId(template)).some((statement) => statement.resources.includes('*')));
  });

  it('outputs the webhook URL, the secrets, the bucket and the next steps', () => {
    const outputs = template.toJSON().Outputs as Json;
    assert.equal(text(outputs.WebhookUrl.Value), `\${${ids.url}.FunctionUrl}`);
    assert.equal(text(outputs.BotTokenSecretArn.Value), `\${${ids.botToken}}`);
    assert.equal(text(outputs.WebhookSecretArn.Value), `\${${ids.webhookSecret}}`);
    assert.equal(text(outputs.HistoryBucketName.Value), `\${${ids.bucket}}`);
    const nextSteps = text(outputs.NextSteps.Value);
    assert.ok(nextSteps.includes(
      `aws secretsmanager put-secret-value --region \${AWS::Region} --secret-id \${${ids.botToken}} --secret-string '<token from @BotFather>'`,
    ), nextSteps);
    assert.ok(nextSteps.includes(
      `AGENT_HOST_TELEGRAM_BOT_TOKEN_SECRET=\${${ids.botToken}} AWS_REGION=\${AWS::Region} agent-host telegram set-webhook ` +
        `--url \${${ids.url}.FunctionUrl} --secret-id \${${ids.webhookSecret}}`,
    ), nextSteps);
  });
});

describe('context parameters', () => {
  it('set the runtime name and lifecycle', () => {
    const { template } = synth({ runtimeName: 'my_agent', idleTimeoutSecs: '120', maxLifetimeSecs: '3600' });
    template.hasResourceProperties('AWS::BedrockAgentCore::Runtime', {
      AgentRuntimeName: 'my_agent',
      LifecycleConfiguration: { IdleRuntimeSessionTimeout: 120, MaxLifetime: 3600 },
    });
  });

  it('grant a plain model id on its own, with no inference profile', () => {
    const { template } = synth({ modelId: PLAIN_MODEL });
    const env = only(template, 'AWS::BedrockAgentCore::Runtime').props.EnvironmentVariables;
    assert.equal(env.AGENT_HOST_MODEL_ID, PLAIN_MODEL);
    const bedrock = statementsOf(template, runtimeRoleId(template))
      .filter((statement) => statement.actions.some((action) => action.startsWith('bedrock:')));
    assert.deepEqual(bedrock, [{
      sid: 'InvokeModel',
      actions: ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'],
      resources: [`arn:\${AWS::Partition}:bedrock:\${AWS::Region}::foundation-model/${PLAIN_MODEL}`],
      condition: undefined,
    }]);
  });

  const refused: Array<[string, Context, RegExp]> = [
    ['a runtime name with a hyphen', { runtimeName: 'agent-host' }, /"runtimeName".*no hyphens/],
    ['an idle timeout under a minute', { idleTimeoutSecs: '10' }, /"idleTimeoutSecs" is "10".*from 60 to 28800/],
    ['an idle timeout over 8 hours', { idleTimeoutSecs: '28801' }, /"idleTimeoutSecs"/],
    ['an idle timeout that is not a number', { idleTimeoutSecs: '15m' }, /"idleTimeoutSecs"/],
    ['a lifetime shorter than the idle timeout', { idleTimeoutSecs: '900', maxLifetimeSecs: '600' }, /"maxLifetimeSecs".*idleTimeoutSecs/],
    ['user ids that are not numbers', { allowedUsers: 'abc' }, /"allowedUsers" is "abc"/],
    ['no user ids', { allowedUsers: undefined }, /"allowedUsers" is required/],
    ['a model id with a space', { modelId: 'claude sonnet' }, /"modelId"/],
    ['a relay that was not built', { relayAsset: '/nonexistent/bootstrap.zip' },
      /"relayAsset".*cargo lambda build --release --arm64 -p agent-host-relay --output-format zip/],
  ];
  for (const [what, context, message] of refused) {
    it(`refuse ${what}`, () => {
      assert.throws(() => new AgentHostStack(newApp(context), 'AgentHostStack'), message);
    });
  }
});

import { App } from 'aws-cdk-lib';
import { AgentHostStack } from '../lib/agent-host-stack';

// Environment-agnostic: account and region come from the credentials `cdk deploy` uses.
const app = new App();
new AgentHostStack(app, 'AgentHostStack', {
  description: 'agent-host: a coding agent on Amazon Bedrock AgentCore Runtime, with its Telegram webhook relay',
});

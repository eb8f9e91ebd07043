// Sends HL7 messages to an MLLP listener with simple-hl7, one after the other (the next one
// from the callback of the previous ACK), and prints every answer as a JSON array of strings.
//   node send.js HOST PORT MESSAGES.json
'use strict';
const fs = require('fs');
const hl7 = require('simple-hl7');

const [host, port, file] = process.argv.slice(2);
const messages = JSON.parse(fs.readFileSync(file, 'utf8'));
const parser = new hl7.Parser({ segmentSeperator: '\r' });
const client = hl7.Server.createTcpClient({ host: host, port: Number(port), keepalive: true });
const answers = [];

function next(index) {
  if (index === messages.length) {
    client.close();
    process.stdout.write(JSON.stringify(answers));
    return;
  }
  client.send(parser.parse(messages[index]), function (err, ack) {
    if (err) {
      process.stderr.write(String(err) + '\n');
      process.exit(1);
    }
    answers.push(ack.toString());
    // The client clears its "awaiting response" flag only after this callback returns.
    setImmediate(next, index + 1);
  });
}

next(0);

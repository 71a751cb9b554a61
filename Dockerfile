# syntax=docker/dockerfile:1
# The service image: every worker runs from it (`node dist/run.mjs NAME`, or all under `node dist/supervisor.mjs`).
# Multi-stage: the build stage has the dev dependencies (tsc, the .d.ts bundler); the runtime stage
# has production dependencies only and runs as the unprivileged `node` user.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build:js && npm run build:client

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
# The commands (migrate, catalog, tasks, call, dead-letter) run the TypeScript with tsx, a production dependency.
COPY tsconfig.json ./
COPY domain ./domain
COPY infra ./infra
COPY workers ./workers
COPY docs/examples ./docs/examples
COPY --from=build /app/dist ./dist
USER node
EXPOSE 9400-9403
# Not `npm start`: its prestart would rebuild dist/ (read-only for `node`), and node gets SIGTERM directly.
CMD ["node", "dist/supervisor.mjs"]

CREATE TABLE `allgroup` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`groupname` text NOT NULL,
	`groupdesc` text DEFAULT '' NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `allgroup_name_uq` ON `allgroup` (`groupname`);--> statement-breakpoint
CREATE TABLE `friend` (
	`userid` integer NOT NULL,
	`friendid` integer NOT NULL,
	PRIMARY KEY(`userid`, `friendid`)
);
--> statement-breakpoint
CREATE TABLE `groupuser` (
	`groupid` integer NOT NULL,
	`userid` integer NOT NULL,
	`grouprole` text DEFAULT 'normal' NOT NULL,
	PRIMARY KEY(`groupid`, `userid`)
);
--> statement-breakpoint
CREATE INDEX `groupuser_user_ix` ON `groupuser` (`userid`);--> statement-breakpoint
CREATE TABLE `offlinemessage` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`userid` integer NOT NULL,
	`msgid` text NOT NULL,
	`message` text NOT NULL,
	`ts` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `offline_user_ix` ON `offlinemessage` (`userid`,`id`);--> statement-breakpoint
CREATE INDEX `offline_user_msg_ix` ON `offlinemessage` (`userid`,`msgid`);--> statement-breakpoint
CREATE TABLE `setting` (
	`name` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `user` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`password` text NOT NULL,
	`state` text DEFAULT 'offline' NOT NULL,
	`tokengen` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `user_name_uq` ON `user` (`name`);